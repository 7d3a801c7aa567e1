from povguard_platform.migrations import run_env

run_env("reporting")
