"""The support domain, pure: plans and their measures, the catalogue, 缺什么补什么, 一兜了之, delivery checks."""
