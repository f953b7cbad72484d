// The chart's alerts (PrometheusRule) and Grafana dashboard (ConfigMap): off by default, rendered on
// request, the rules valid and unit-tested with the real promtool, and every metric they read
// exported by the real driver binary (node and controller mode).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type KubernetesObject, loadYaml } from '@kubernetes/client-node';
import { packageRoot } from '../../src/paths.js';
import { chartDir, objectsOf, only, render, template } from '../harness/chart.js';
import { startDriver } from '../harness/driver.js';
import { exposedSeriesNames, metricNamesIn } from '../harness/promql.js';
import { requireTool, tools } from '../harness/tools.js';

interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface PrometheusRule extends KubernetesObject { spec: { groups: { name: string; rules: Rule[] }[] } }
interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
  templating: { list: { name: string; query?: string | { query: string } }[] };
}

const ON = { metrics: { prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } } };
const testsFile = join(packageRoot, 'test', 'alerts', 's3fs-csi.rules.test.yaml');
// Series Prometheus makes itself rather than scraping them from the driver.
const SYNTHESIZED = new Set(['up']);

function promtool(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const bin = requireTool(tools.promtool);
  return new Promise((resolve) => {
    execFile(bin, args, { cwd, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr });
    });
  });
}

const rulesOf = (objs: KubernetesObject[]): Rule[] => only<PrometheusRule>(objs, 'PrometheusRule').spec.groups.flatMap((g) => g.rules);

function dashboardExprs(d: Dashboard): string[] {
  const fromPanels = d.panels.flatMap((p) => p.targets.map((t) => t.expr));
  const fromVars = d.templating.list.map((v) => (typeof v.query === 'object' ? v.query.query : v.query ?? ''))
    .map((q) => /^label_values\(([^,]+),/.exec(q)?.[1] ?? '').filter(Boolean);
  return [...fromPanels, ...fromVars];
}

describe('chart: alerts and dashboard render only on request', () => {
  it('defaults: no PrometheusRule, no dashboard ConfigMap', async () => {
    const objs = await render({});
    assert.equal(objectsOf(objs, 'PrometheusRule').length, 0);
    assert.equal(objectsOf(objs, 'ConfigMap').length, 0);
  });

  it('enabled: one PrometheusRule in the release namespace, alerts selecting the ServiceMonitor jobs', async () => {
    const objs = await render(ON, { namespace: 'storage' });
    const rule = only<PrometheusRule>(objs, 'PrometheusRule');
    assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(rule.metadata?.namespace, 'storage');
    const alerts = rulesOf(objs).map((r) => r.alert);
    assert.deepEqual(alerts, ['S3fsCsiVolumeAbnormal', 'S3fsCsiRecoveryFailing', 'S3fsCsiRecoveryScanFailing', 'S3fsCsiProbeFailing', 'S3fsCsiDriverDown', 'S3fsCsiOperationErrors']);
    for (const r of rulesOf(objs)) {
      assert.match(r.expr, /job=~"s3fs-csi-\(controller\|node\|mounter\)-metrics"/, `${r.alert} selects the chart's jobs`);
      assert.ok(r.labels?.severity && r.annotations?.summary && r.annotations.description, `${r.alert} has severity, summary, description`);
    }
    // The jobs named are the Services the ServiceMonitors scrape.
    const withMonitors = await render({ ...ON, metrics: { ...ON.metrics, serviceMonitor: { enabled: true } } });
    assert.deepEqual(objectsOf(withMonitors, 'Service').map((s) => s.metadata?.name).sort(), ['s3fs-csi-controller-metrics', 's3fs-csi-mounter-metrics', 's3fs-csi-node-metrics']);
  });

  it('selector, durations, threshold, severities and labels follow the values', async () => {
    const objs = await render({
      metrics: {
        prometheusRule: {
          enabled: true, selector: 'cluster="prod", job="s3fs"', volumeAbnormalFor: '15m', errorRatio: 0.2,
          severity: { page: 'page', ticket: 'ticket' }, labels: { release: 'kube-prometheus-stack' },
        },
      },
    });
    const rules = rulesOf(objs);
    const byName = (n: string): Rule => rules.find((r) => r.alert === n)!;
    assert.ok(rules.every((r) => r.expr.includes('cluster="prod", job="s3fs"') && !r.expr.includes('job=~')));
    assert.equal(byName('S3fsCsiVolumeAbnormal').for, '15m');
    assert.equal(byName('S3fsCsiVolumeAbnormal').labels?.severity, 'page');
    assert.equal(byName('S3fsCsiOperationErrors').labels?.severity, 'ticket');
    assert.match(byName('S3fsCsiOperationErrors').expr, /> 0\.2$/);
    assert.equal(only(objs, 'PrometheusRule').metadata?.labels?.release, 'kube-prometheus-stack');
  });

  it('dashboard ConfigMap: discovery label (configurable), namespace, the JSON file verbatim', async () => {
    const file = await readFile(join(chartDir, 'dashboards', 's3fs-csi.json'), 'utf8');
    const objs = await render(ON);
    const cm = only<KubernetesObject & { data: Record<string, string> }>(objs, 'ConfigMap', '-dashboard');
    assert.equal(cm.metadata?.labels?.grafana_dashboard, '1');
    assert.equal(cm.metadata?.namespace, 'kube-system');
    assert.deepEqual(JSON.parse(cm.data['s3fs-csi.json']!), JSON.parse(file));
    const custom = await render({ metrics: { grafanaDashboard: { enabled: true, namespace: 'monitoring', labels: { dashboards: 'storage' }, annotations: { folder: 'Storage' } } } });
    const c2 = only(custom, 'ConfigMap', '-dashboard');
    assert.equal(c2.metadata?.namespace, 'monitoring');
    assert.equal(c2.metadata?.labels?.dashboards, 'storage');
    assert.equal(c2.metadata?.labels?.grafana_dashboard, '1', 'helm merges label maps: the default stays');
    // A Grafana looking for another label: the default is dropped with null, as helm removes keys.
    const other = only(await render({ metrics: { grafanaDashboard: { enabled: true, labels: { grafana_dashboard: null, dashboards: 'storage' } } } }), 'ConfigMap', '-dashboard');
    assert.equal(other.metadata?.labels?.grafana_dashboard, undefined);
    assert.equal(other.metadata?.labels?.dashboards, 'storage');
    assert.equal(c2.metadata?.annotations?.folder, 'Storage');
  });

  const bad: [string, object, RegExp][] = [
    ['an error ratio above 1', { metrics: { prometheusRule: { errorRatio: 2 } } }, /errorRatio/],
    ['a duration without unit', { metrics: { prometheusRule: { volumeAbnormalFor: '5' } } }, /volumeAbnormalFor/],
    ['an unknown key', { metrics: { grafanaDashboard: { enable: true } } }, /additional properties 'enable' not allowed/],
  ];
  for (const [what, values, message] of bad) {
    it(`schema rejects ${what}`, async () => {
      const r = await template(values);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, message);
    });
  }
});

describe('chart alerts: promtool', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3fs-csi-alerts-'));
    const groups = only<PrometheusRule>(await render(ON), 'PrometheusRule').spec.groups;
    await writeFile(join(dir, 'rules.yaml'), JSON.stringify({ groups }, null, 2)); // JSON is YAML
    await copyFile(testsFile, join(dir, 's3fs-csi.rules.test.yaml'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('promtool check rules: the rendered rules are valid', async () => {
    const r = await promtool(['check', 'rules', 'rules.yaml'], dir);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS: 6 rules found/);
  });

  it('promtool test rules: every alert is silent when it should be and fires with its labels and text', async () => {
    const r = await promtool(['test', 'rules', 's3fs-csi.rules.test.yaml'], dir);
    assert.equal(r.code, 0, r.out);
    // Each alert has a test in which it fires (a rule nobody tests firing could be dead).
    const tests = loadYaml<{ tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] }>(await readFile(testsFile, 'utf8'));
    const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const alerts = rulesOf(await render(ON)).map((x) => x.alert);
    assert.deepEqual([...firing].sort(), [...alerts].sort());
  });

  it('the unit tests can fail: a rule with another threshold fails them', async () => {
    const rules = await readFile(join(dir, 'rules.yaml'), 'utf8');
    const broken = join(dir, 'broken');
    await mkdir(broken);
    await writeFile(join(broken, 'rules.yaml'), rules.replace('> 0.05', '> 0.9'));
    await copyFile(testsFile, join(broken, 's3fs-csi.rules.test.yaml'));
    const r = await promtool(['test', 'rules', 's3fs-csi.rules.test.yaml'], broken);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /S3fsCsiOperationErrors/);
  });
});

describe('alerts and dashboard read only metrics the real driver exports', () => {
  it('metric names are found in expressions (the extractor itself)', () => {
    assert.deepEqual(metricNamesIn('sum by (le, pod) (rate(a_bucket{x="y", pod=~"$pod"}[$__rate_interval])) / on(pod) b unless c > 0.5'), ['a_bucket', 'b', 'c']);
    assert.deepEqual(metricNamesIn('histogram_quantile(0.99, sum without (job) (rate(x_total[5m])))'), ['x_total']);
  });

  for (const mode of ['node', 'controller'] as const) {
    it(`--mode ${mode}: every series name the rules and the dashboard use is on /metrics`, async (t) => {
      const driver = await startDriver({ mode });
      t.after(() => driver.cleanup());
      const page = await driver.http('/metrics');
      assert.equal(page.status, 200);
      const exposed = exposedSeriesNames(page.body);
      const objs = await render(ON);
      const cm = only<KubernetesObject & { data: Record<string, string> }>(objs, 'ConfigMap', '-dashboard');
      const exprs = [...rulesOf(objs).map((r) => r.expr), ...dashboardExprs(JSON.parse(cm.data['s3fs-csi.json']!) as Dashboard)];
      const used = new Set(exprs.flatMap(metricNamesIn));
      assert.ok(used.size >= 8, `only ${[...used].join(', ')}`);
      const missing = [...used].filter((n) => !exposed.has(n) && !SYNTHESIZED.has(n));
      assert.deepEqual(missing, [], `not exported by the driver in ${mode} mode`);
    });
  }
});
