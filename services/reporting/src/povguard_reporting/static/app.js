// 运行看板: one summary request per org unit and date, re-rendered when the figures change (polled with an ETag).
// No framework, no CDN: this file, app.css and the bundled ECharts are served by the reporting service itself.
(function () {
  'use strict';
  var TABS = ['进度', '研判', '帮扶', '数据质量', '审计', '运行'];
  var POLL_MS = 2000;
  var st = { token: sessionStorage.getItem('povguard.token'), org: null, asOf: '', tab: '进度', summary: null,
             etag: null, household: null, charts: [] };
  var $ = function (id) { return document.getElementById(id); };

  function esc(v) {
    return String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function n(v) { return (v || 0).toLocaleString('zh-CN'); }
  function opt(v) { return v === undefined ? '—' : n(v); }  // a figure the view does not show (county-wide only)
  function pct(a, b) { return b ? Math.round(a * 1000 / b) / 10 + '%' : '—'; }

  // --- routing: #<tab>/<org>[/<household>] ------------------------------------------------------------------------
  function readHash() {
    var h = decodeURIComponent(location.hash.replace(/^#/, ''));
    var m = /(?:^|&)token=([^&]+)/.exec(h);
    if (m) {
      st.token = m[1];
      sessionStorage.setItem('povguard.token', st.token);
      h = '';
    }
    var parts = h.split('/');
    st.tab = TABS.indexOf(parts[0]) >= 0 ? parts[0] : '进度';
    st.org = /^\d{6,12}$/.test(parts[1] || '') ? parts[1] : st.org;
    st.household = parts[2] || null;
  }
  function go(tab, org, household) {
    var h = '#' + tab + '/' + (org || st.org || '') + (household ? '/' + household : '');
    if (location.hash !== h) { location.hash = h; } else { route(); }
  }

  // --- the API ----------------------------------------------------------------------------------------------------
  function api(path, params, headers) {
    var q = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) { if (params[k]) { q.set(k, params[k]); } });
    var h = Object.assign({ Authorization: 'Bearer ' + st.token }, headers || {});
    return fetch(path + (q.toString() ? '?' + q : ''), { headers: h }).then(function (r) {
      if (r.status === 401) { signIn('令牌无效或已过期，请重新登录'); throw new Error('401'); }
      return r;
    });
  }
  function json(path, params) {
    return api(path, params).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.detail || body.title || r.status); }
        return body;
      });
    });
  }

  function signIn(message) {
    $('sign-in').hidden = false;
    $('tabs').hidden = true;
    $('page').innerHTML = '';
    $('sign-in-error').textContent = message || '';
  }

  // --- loading and live updates -----------------------------------------------------------------------------------
  function load(quiet) {
    var params = { org: st.org, as_of: st.asOf };
    var headers = quiet && st.etag ? { 'If-None-Match': st.etag } : {};
    return api('/v1/dashboard/summary', params, headers).then(function (r) {
      $('live').className = '';
      if (r.status === 304) { return; }
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.detail || body.title); }
        st.etag = r.headers.get('ETag');
        st.summary = body;
        st.org = body.org.code;
        render();
      });
    }).catch(function (e) {
      $('live').className = 'stale';
      if (!quiet && e.message !== '401') { $('page').innerHTML = '<p class="error">' + esc(e.message) + '</p>'; }
    });
  }
  function poll() {
    if (st.token && !document.hidden && st.tab !== '运行' && !st.household) { load(true); }
    setTimeout(poll, POLL_MS);
  }

  // --- building blocks --------------------------------------------------------------------------------------------
  function cards(items) {
    return '<div class="cards">' + items.map(function (c) {
      return '<div class="card' + (c[3] ? ' warn' : '') + '" data-kpi="' + c[0] + '"><div class="n">' + esc(c[2]) +
        '</div><div class="l">' + esc(c[1]) + '</div></div>';
    }).join('') + '</div>';
  }
  function table(id, head, rows) {
    return '<table id="' + id + '"><thead><tr>' + head.map(function (h) { return '<th>' + esc(h) + '</th>'; }).join('') +
      '</tr></thead><tbody>' + rows.map(function (r) {
        return '<tr>' + r.map(function (c, i) {
          var raw = c && c.html !== undefined;
          return '<td' + (i === 0 ? ' class="t"' : '') + '>' + (raw ? c.html : esc(c)) + '</td>';
        }).join('') + '</tr>';
      }).join('') + '</tbody></table>';
  }
  function drill(code, name) {
    return { html: '<a class="drill" data-org="' + esc(code) + '">' + esc(name) + '</a>' };
  }
  function section(title, body, id) {
    return '<section' + (id ? ' id="' + id + '"' : '') + '><h2>' + esc(title) + '</h2>' + body + '</section>';
  }
  function chart(id) { return '<div class="chart" id="' + id + '"></div>'; }
  function draw(id, option) {
    var el = $(id);
    if (!el || !window.echarts) { return; }
    var c = window.echarts.getInstanceByDom(el) || window.echarts.init(el);
    c.setOption(Object.assign({ tooltip: { trigger: 'axis' }, grid: { left: 50, right: 20, top: 30, bottom: 70 } },
                              option), true);
    st.charts.push(c);
  }
  function bars(id, labels, series) {
    draw(id, {
      legend: { top: 0 }, xAxis: { type: 'category', data: labels, axisLabel: { rotate: labels.length > 6 ? 30 : 0,
                                                                                 interval: 0 } },
      yAxis: { type: 'value' },
      series: series.map(function (s) { return { name: s[0], type: 'bar', data: s[1], label: { show: labels.length < 12,
                                                                                               position: 'top' } }; })
    });
  }
  function kv(o) { return Object.keys(o || {}).map(function (k) { return [k, o[k]]; }); }

  // --- pages ------------------------------------------------------------------------------------------------------
  function crumbs() {
    var path = st.summary.org.path;
    $('crumbs').innerHTML = path.map(function (p, i) {
      var last = i === path.length - 1 && !st.household;
      return last ? '<strong>' + esc(p.name) + '</strong>' : '<a data-org="' + p.code + '">' + esc(p.name) + '</a>';
    }).join('<span class="sep">›</span>') + (st.household ? '<span class="sep">›</span><strong>' +
                                              esc(st.household) + '</strong>' : '') + dataAsOf();
  }
  // what the figures count exactly: the last event of each source (its time; its position on hover)
  function dataAsOf() {
    var of = st.summary.data_as_of || {};
    var names = Object.keys(of);
    if (!names.length) { return ''; }
    var last = names.map(function (n) { return of[n].time; }).sort().pop();
    var detail = names.map(function (n) { return n + ' #' + of[n].position + ' ' + of[n].time; }).join('\n');
    return '<span class="as-of" title="' + esc(detail) + '">数据截至 ' +
      esc(new Date(last).toLocaleString('zh-CN', { hour12: false })) + '</span>';
  }

  function childRows(cols) {
    var s = st.summary;
    var village = s.org.level === 'village';
    return s.children.map(function (c) {
      return [village ? c.name : drill(c.code, c.name)].concat(cols.map(function (k) {
        return typeof k === 'function' ? k(c) : n(c[k]);
      }));
    });
  }

  function progress() {
    var s = st.summary, t = s.totals, d = s.deadlines;
    var html = cards([
      ['households', '农户户数', n(t.households)], ['persons', '农户人数', n(t.persons)],
      ['priority', '重点排查户', n(t.priority)], ['visited', '已入户调查', n(t.visited)],
      ['visited_share', '入户率', pct(t.visited, t.households)], ['assessed', '已研判', n(t.assessed)],
      ['open_cases', '办理中案件', n(t.open_cases)], ['overdue', '逾期未办结', n(t.overdue), t.overdue > 0],
      ['decided', '县级已审定', n(t.decided)],
      ['at_risk', '15天识别时限临近', n(d.identification.at_risk), d.identification.at_risk > 0],
      ['past_limit', '已超15天', n(d.identification.past), d.identification.past > 0]
    ]);
    html += '<div class="grid2">' + section('各阶段时限（截至 ' + s.day + '）', table('deadlines',
      ['阶段', '完成时限', '剩余天数', '办理中', '逾期', '应办理'], d.stages.map(function (r) {
        return [r.stage, r.deadline, { html: '<span class="' + (r.days_left < 0 ? 'late' : 'ok') + '">' +
          (r.days_left < 0 ? '已过 ' + (-r.days_left) + ' 天' : r.days_left + ' 天') + '</span>' },
          n(r.open), { html: r.overdue ? '<span class="late">' + n(r.overdue) + '</span>' : '0' }, r.acts];
      }))) + section('办理中案件（按阶段）', chart('stage-chart')) + '</div>';
    if (s.org.level !== 'village') {
      html += section('下级单位进度（点击名称下钻）', table('children', ['单位', '户数', '重点排查', '已入户', '入户率', '已研判',
        '办理中', '逾期', '已审定', '未清零问题'], childRows(['households', 'priority', 'visited', function (c) {
        return pct(c.visited, c.households); }, 'assessed', 'open_cases', 'overdue', 'decided', 'problems_open'])));
    } else {
      html += section('本村农户（点击查看经历）', '<div id="households">正在加载…</div>');
    }
    $('page').innerHTML = html;
    var open = s.stages.open;
    bars('stage-chart', d.stages.map(function (r) { return r.stage; }),
         [['办理中', d.stages.map(function (r) { return open[r.stage] || 0; })]]);
    if (s.org.level === 'village') { householdList(); }
  }

  function householdList() {
    json('/v1/dashboard/households', { org: st.org, as_of: st.asOf, limit: 500 }).then(function (page) {
      $('households').innerHTML = table('household-table', ['户编号', '户主', '村民小组', '户类型', '人口', '入户', '收入分段',
        '研判', '办理中阶段', '帮扶计划'], page.data.map(function (h) {
        return [{ html: '<a class="drill" data-household="' + esc(h.household_id) + '">' + esc(h.code || h.household_id) +
                  '</a>' }, h.head, h.grp, h.kind, h.persons, h.visited ? '是' : '否', h.band, h.proposal,
                h.open_stage, h.plan_open ? '有' : ''];
      }));
    });
  }

  function history() {
    $('page').innerHTML = '<p class="loading">正在加载…</p>';
    json('/v1/dashboard/households/' + encodeURIComponent(st.household) + '/history', {}).then(function (h) {
      $('page').innerHTML = section('农户经历：' + (h.code || h.household_id) + ' ' + (h.head || ''),
        '<p>审计时间线（审计服务）：<code>' + esc(h.audit_timeline) + '</code></p>' +
        table('history', ['时间', '服务', '事件', '办理人', '角色', '内容'], h.events.map(function (e) {
          return [e.time.replace('T', ' ').slice(0, 19), e.source, e.type, e.user, e.role,
                  JSON.stringify(e.fact)];
        })));
    }).catch(function (e) { $('page').innerHTML = '<p class="error">' + esc(e.message) + '</p>'; });
  }

  function judgement() {
    var s = st.summary, o = s.outcomes;
    var html = '<div class="grid2">' + section('人均纯收入分段（户 / 人）— 基本数据库', chart('band-chart') +
      table('bands', ['分段', '户数', '人数'], s.bands.map(function (b) { return [b.band, n(b.households), n(b.persons)]; }))) +
      section('研判建议与县级审定（八类结果）', chart('outcome-chart') + table('outcomes', ['结果', '研判建议', '审定户数', '审定人数'],
        o.order.map(function (k) { var d = o.decided[k] || {}; return [k, n(o.proposed[k]), n(d.households), n(d.persons)]; }))) +
      '</div><div class="grid2">' + section('新识别监测对象：类别', table('new-categories', ['类别', '户数'], kv(o.new_categories))) +
      section('新识别监测对象：风险类型', chart('risk-chart')) + '</div>' +
      section('规模性返贫风险预警（乡镇）', s.scale_risk.length ? table('scale-risk', ['乡镇', '超过阈值的指标', '预警日期'],
        s.scale_risk.map(function (a) { return [a.name, a.crossed.join('、'), a.as_of]; })) : '<p>无</p>');
    $('page').innerHTML = html;
    bars('band-chart', s.bands.map(function (b) { return b.band; }),
         [['户数', s.bands.map(function (b) { return b.households; })], ['人数', s.bands.map(function (b) { return b.persons; })]]);
    bars('outcome-chart', o.order, [['研判建议', o.order.map(function (k) { return o.proposed[k] || 0; })],
                                     ['县级审定', o.order.map(function (k) { return (o.decided[k] || {}).households || 0; })]]);
    var risks = kv(o.new_risks);
    bars('risk-chart', risks.map(function (r) { return r[0]; }), [['户数', risks.map(function (r) { return r[1]; })]]);
  }

  function support() {
    var s = st.summary, p = s.support;
    var html = cards([
      ['plans', '帮扶计划（一户一策）', n(p.plans)], ['measures', '帮扶措施', n(p.measures)],
      ['implemented', '已落实措施', n(p.implemented)],
      ['households_missing', '缺什么补什么未覆盖户', n(p.households_missing), p.households_missing > 0],
      ['safety_net_only', '一兜了之', n(p.safety_net_only), p.safety_net_only > 0],
      ['behind', '收入进度滞后', n(p.behind), p.behind > 0], ['unrecorded', '未录入', n(p.unrecorded), p.unrecorded > 0],
      ['unreceived', '未享受录入', n(p.unreceived), p.unreceived > 0]
    ]) + '<div class="grid2">' + section('帮扶措施（按类型）', chart('measure-chart')) +
      section('未覆盖的风险和缺口（缺什么补什么）', table('missing', ['风险/缺口', '户数'], kv(p.missing_by_need))) + '</div>';
    if (s.org.level !== 'village') {
      html += section('下级单位帮扶', table('children', ['单位', '帮扶计划', '缺什么补什么未覆盖', '一兜了之', '措施录入不一致'],
        childRows(['plans', 'missing', 'safety_net_only', 'mismatched'])));
    }
    $('page').innerHTML = html;
    var kinds = kv(p.by_kind);
    bars('measure-chart', kinds.map(function (k) { return k[0]; }), [['项数', kinds.map(function (k) { return k[1]; })]]);
  }

  function quality() {
    var s = st.summary, q = s.problems;
    var html = cards([['problems_open', '未清零问题', n(q.open), q.open > 0], ['problems_cleared', '已清零问题', n(q.cleared)]]) +
      '<div class="grid2">' + section('问题清零趋势（每日未清零数）', chart('trend-chart')) +
      section('按规则', table('rules', ['规则', '类型', '未清零', '已清零'], q.by_rule.map(function (r) {
        return [r.rule, r.kind, n(r.open), n(r.cleared)]; }))) + '</div>';
    if (s.org.level !== 'village') {
      html += section('下级单位未清零问题', table('children', ['单位', '未清零问题'], childRows(['problems_open'])));
    }
    $('page').innerHTML = html;
    draw('trend-chart', { xAxis: { type: 'category', data: q.trend.map(function (d) { return d.day.slice(5); }) },
                          yAxis: { type: 'value' }, series: [{ name: '未清零', type: 'line', data: q.trend.map(function (d) {
                            return d.open; }) }] });
  }

  function auditPage() {
    var a = st.summary.audit, cp = a.checkpoint;
    $('page').innerHTML = cards([['anomalies', '异常发现', n(Object.values(a.anomalies).reduce(function (x, y) { return x + y; }, 0)),
                                  Object.keys(a.anomalies).length > 0],
                                 ['checkpoint', '最新签名检查点（条目数）', cp ? n(cp.tree_size) : '—']]) +
      section('最新签名检查点', cp ? '<p>条目数 ' + n(cp.tree_size) + '，签名时间 ' + esc(cp.signed_at) + '</p><p>根哈希 <code>' +
              esc(cp.root_hash) + '</code></p><p>见证人联署：审计服务 <code>/v1/audit/checkpoints/latest</code></p>' : '<p>尚无</p>') +
      '<div class="grid2">' + section('异常发现（按类型）', table('anomaly-kinds', ['类型', '次数'], kv(a.anomalies))) +
      section('最近的异常发现', table('anomalies', ['时间', '类型', '农户', '办理人'], a.recent.map(function (f) {
        return [f.recorded_at.replace('T', ' ').slice(0, 19), f.kind,
                f.household_id ? { html: '<a class="drill" data-household="' + esc(f.household_id) + '">' +
                                   esc(f.household_id) + '</a>' } : '', f.actor];
      }))) + '</div>';
  }

  function operations() {
    $('page').innerHTML = '<p class="loading">正在加载…</p>';
    json('/v1/operations', {}).then(function (o) {
      var letters = [];
      o.services.forEach(function (s) { (s.dead_letter_list || []).forEach(function (d) { letters.push([s.service, d]); }); });
      $('page').innerHTML = section('各服务运行状态', table('services', ['服务', '就绪', '消费积压', '转发积压', '死信', '请求数',
        '服务端错误', '接口文档'], o.services.map(function (s) {
        return [s.service, { html: s.ready ? '<span class="ok">就绪</span>' : '<span class="late">' + esc(s.error ||
          JSON.stringify(s.checks)) + '</span>' }, opt(s.consumer_lag), opt(s.relay_lag), opt(s.dead_letters),
          opt(s.requests), opt(s.server_errors), { html: '<a href="' + esc(s.docs) + '">/docs</a>' }];
      }))) + section('死信（管理员可重试）', letters.length ? table('dead-letters', ['服务', '编号', '消费者', '事件', '错误', '次数', ''],
        letters.map(function (x) {
          var d = x[1];
          return [x[0], d.id, d.consumer, d.event.type, d.error.slice(0, 80), d.attempts,
                  { html: '<button class="retry" data-service="' + esc(x[0]) + '" data-id="' + d.id + '">重试</button>' }];
        })) : '<p>无</p>');
    }).catch(function (e) { $('page').innerHTML = '<p class="error">' + esc(e.message) + '</p>'; });
  }

  var PAGES = { '进度': progress, '研判': judgement, '帮扶': support, '数据质量': quality, '审计': auditPage };

  function render() {
    st.charts.forEach(function (c) { c.dispose(); });
    st.charts = [];
    document.querySelectorAll('#tabs a').forEach(function (a) {
      a.className = a.dataset.tab === st.tab ? 'active' : '';
      a.href = '#' + a.dataset.tab + '/' + (st.org || '');
    });
    if (st.tab === '运行') { return operations(); }
    if (st.household) { if (st.summary) { crumbs(); } return history(); }
    if (!st.summary) { return; }
    crumbs();
    $('csv').href = '#';
    document.body.dataset.version = st.summary.version;
    PAGES[st.tab]();
  }

  function route() {
    var before = st.org;
    readHash();
    if (!st.token) { return signIn(); }
    $('sign-in').hidden = true;
    $('tabs').hidden = false;
    if (st.org !== before || !st.summary) { st.etag = null; return load(false); }
    render();
  }

  document.addEventListener('click', function (e) {
    var t = e.target;
    if (t.dataset && t.dataset.org) { e.preventDefault(); go(st.tab === '运行' ? '进度' : st.tab, t.dataset.org); }
    else if (t.dataset && t.dataset.household) { e.preventDefault(); go(st.tab, st.org, t.dataset.household); }
    else if (t.className === 'retry') {
      t.disabled = true;
      fetch('/v1/operations/' + t.dataset.service + '/dead-letters/' + t.dataset.id + '/retry',
            { method: 'POST', headers: { Authorization: 'Bearer ' + st.token } }).then(function (r) {
        return r.json().then(function (b) { t.textContent = r.ok ? '已重试' : (b.detail || b.title); });
      });
    }
  });
  $('sign-in').addEventListener('submit', function (e) {
    e.preventDefault();
    st.token = $('token').value.trim();
    sessionStorage.setItem('povguard.token', st.token);
    route();
  });
  $('sign-out').addEventListener('click', function () {
    sessionStorage.removeItem('povguard.token');
    st.token = null;
    st.summary = null;
    signIn();
  });
  $('as-of').addEventListener('change', function (e) { st.asOf = e.target.value; st.etag = null; load(false); });
  $('csv').addEventListener('click', function (e) {
    e.preventDefault();
    api('/v1/reports/statistics.xlsx', { org: st.org, as_of: st.asOf }).then(function (r) { return r.blob(); })
      .then(function (b) {
        var a = document.createElement('a');
        a.href = URL.createObjectURL(b);
        a.download = '附件3-统计表-' + st.org + '.xlsx';
        a.click();
      });
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', function () { st.charts.forEach(function (c) { c.resize(); }); });
  route();
  setTimeout(poll, POLL_MS);
})();
