/**
 * The shipped Grafana dashboard and Prometheus alert rules (deploy/monitoring/) use only metrics the server exports:
 * every `switchboard_*` name in a panel query or an alert expression appears as `# TYPE` in a real server's /metrics
 * (started with Redis, a webhook and backend hooks, so the optional metrics are registered). Also checks the shape
 * Grafana and Prometheus need: the datasource as an input, an id per panel, severity and annotations per alert; and
 * that docs/monitoring.md lists exactly the metrics exported.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { freePort } from "../../src/harness/free-port.js";
import { type RedisServer, startRedis } from "../helpers/redis-server.js";
import { metricsText, ROOT, type ServerProcess, startServer, until } from "../helpers/server.js";

const DIR = join(ROOT, "deploy", "monitoring");
const NAME = /switchboard_[a-z_]+/g;
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's placeholder for the datasource input, verbatim.
const DS_INPUT = "${DS_PROMETHEUS}";

type Panel = {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
};
type Dashboard = {
  __inputs?: { name: string; pluginId: string }[];
  uid?: string;
  panels: Panel[];
  templating?: { list: { name: string; query?: unknown; definition?: string }[] };
};

function dashboard(): Dashboard {
  return JSON.parse(readFileSync(join(DIR, "grafana-dashboard.json"), "utf8")) as Dashboard;
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Every query of the dashboard: panel targets and template variables. */
function dashboardExprs(d: Dashboard): string[] {
  const exprs = allPanels(d.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
  for (const v of d.templating?.list ?? []) exprs.push(v.definition ?? "", JSON.stringify(v.query ?? ""));
  return exprs.filter((e) => e !== "");
}

type Rule = { alert: string; expr: string; text: string };

/**
 * A tiny reader for the rules file (no YAML dependency): each `- alert:` starts a rule, its `expr:` is the rest of the
 * line or, after `|` / `>`, the lines indented deeper than the key.
 */
function parseRules(yaml: string): Rule[] {
  const rules: Rule[] = [];
  const lines = yaml.split("\n");
  let current: { alert: string; exprLines: string[]; text: string[] } | null = null;
  const close = () => {
    if (current)
      rules.push({
        alert: current.alert,
        expr: current.exprLines.join(" ").trim(),
        text: current.text.join("\n"),
      });
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const alert = /^\s*- alert:\s*(\S+)/.exec(line);
    if (alert) {
      close();
      current = { alert: alert[1] as string, exprLines: [], text: [] };
    }
    if (!current) continue;
    current.text.push(line);
    const expr = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!expr) continue;
    const indent = (expr[1] as string).length;
    const value = (expr[2] as string).trim();
    if (!/^[|>][-+]?$/.test(value)) {
      current.exprLines.push(value.replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1"));
      continue;
    }
    while (i + 1 < lines.length) {
      const next = lines[i + 1] as string;
      if (next.trim() !== "" && next.length - next.trimStart().length <= indent) break;
      current.exprLines.push(next.trim());
      current.text.push(next);
      i += 1;
    }
  }
  close();
  return rules;
}

function rules(): Rule[] {
  return parseRules(readFileSync(join(DIR, "alerts.yml"), "utf8"));
}

function namesIn(exprs: string[]): Set<string> {
  return new Set(exprs.flatMap((e) => e.match(NAME) ?? []));
}

/** The metric families a /metrics text declares: name → type. */
function declared(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1] as string, m[2] as string);
  return types;
}

/** Names a query uses that /metrics does not declare (a histogram's _bucket/_sum/_count count as the histogram). */
function missing(names: Set<string>, types: Map<string, string>): string[] {
  return [...names]
    .filter((n) => {
      if (types.has(n)) return false;
      const base = n.replace(/_(bucket|sum|count)$/, "");
      return !(base !== n && (types.get(base) === "histogram" || types.get(base) === "summary"));
    })
    .sort();
}

describe("deploy/monitoring files", () => {
  it("the dashboard is an importable Grafana model: Prometheus as an input, unique panel ids, queries", () => {
    const d = dashboard();
    assert.deepEqual(
      d.__inputs?.map((i) => [i.name, i.pluginId]),
      [["DS_PROMETHEUS", "prometheus"]],
    );
    assert.equal(d.uid, "switchboard");
    const panels = allPanels(d.panels);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
    for (const p of panels) {
      if (p.type === "row") continue;
      assert.equal(p.datasource?.uid, DS_INPUT, `${p.title}: datasource is the input`);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: has a query`);
      for (const t of p.targets ?? []) {
        assert.ok(t.expr?.includes("switchboard_"), `${p.title}: queries a switchboard metric`);
        assert.equal(t.datasource?.uid, DS_INPUT, `${p.title}: target datasource is the input`);
      }
    }
    const exprs = dashboardExprs(d).join("\n");
    for (const wanted of [
      "histogram_quantile(0.99, sum by (instance, le) (rate(switchboard_fanout_latency_seconds_bucket",
      'switchboard_errors_total{instance=~"$instance",code="rate_limited"}',
      "rate(switchboard_deliveries_total",
      "rate(switchboard_published_total",
    ])
      assert.ok(exprs.includes(wanted), `dashboard queries ${wanted}`);
  });

  it("every alert has an expression, a severity, a summary and a description", () => {
    const list = rules();
    assert.deepEqual(
      list.map((r) => r.alert),
      [
        "SwitchboardCrashLoop",
        "SwitchboardWorkerRestarts",
        "SwitchboardRedisLinkDown",
        "SwitchboardSlowConsumerSpike",
        "SwitchboardEventLoopLag",
        "SwitchboardFanoutLatencyHigh",
        "SwitchboardHookFailures",
        "SwitchboardWebhookEventsDropped",
      ],
    );
    for (const r of list) {
      assert.match(r.expr, /switchboard_/, `${r.alert}: expr`);
      assert.match(r.text, /^\s+severity: (critical|warning|info)$/m, `${r.alert}: severity label`);
      assert.match(r.text, /^\s+summary: \S/m, `${r.alert}: summary`);
      assert.match(r.text, /^\s+description: \S/m, `${r.alert}: description`);
      assert.match(r.text, /^\s+for: \d+[smh]$/m, `${r.alert}: for`);
    }
    const by = new Map(list.map((r) => [r.alert, r]));
    assert.match(by.get("SwitchboardCrashLoop")?.expr ?? "", /switchboard_crash_loop\) == 1$/);
    assert.match(by.get("SwitchboardRedisLinkDown")?.expr ?? "", /switchboard_redis_link_up\) == 0$/);
    assert.match(
      by.get("SwitchboardEventLoopLag")?.expr ?? "",
      /switchboard_event_loop_lag_seconds\) > 0\.25$/,
    );
    assert.match(
      by.get("SwitchboardFanoutLatencyHigh")?.expr ?? "",
      /^histogram_quantile\(0\.99, .*switchboard_fanout_latency_seconds_bucket\[5m\].*> 0\.5$/,
    );
    // The block-scalar expression is read whole.
    assert.match(by.get("SwitchboardHookFailures")?.expr ?? "", /overloaded.*\/ sum by .*> 0\.05$/);
  });

  describe("every metric they use is exported", () => {
    let redis: RedisServer;
    let server: ServerProcess;
    before(async () => {
      redis = await startRedis();
      // A port nothing listens on: the hooks and the webhook fail, but their metrics are registered.
      const nowhere = `http://127.0.0.1:${await freePort()}/x`;
      server = await startServer([
        "--workers",
        "2",
        "--redis",
        redis.url,
        "--webhook",
        nowhere,
        "--connect-hook",
        nowhere,
        "--subscribe-hook",
        nowhere,
        "--publish-hook",
        nowhere,
        "--rpc-hook",
        nowhere,
        "--refresh-hook",
        nowhere,
      ]);
      await server.publish("monitoring:test", { n: 1 });
      // Redis metrics and the worker-labelled ones exist once the link is up and the workers have reported.
      await until(
        async () => (await metricsText(server)).includes("switchboard_redis_link_up{"),
        15_000,
        "redis",
      );
    });
    after(async () => {
      await server?.stop();
      await redis?.destroy();
    });

    it("dashboard panels and alert expressions name only declared metrics", async () => {
      const text = await metricsText(server);
      const types = declared(text);
      const dash = namesIn(dashboardExprs(dashboard()));
      const alerts = namesIn(rules().map((r) => r.expr));
      assert.ok(dash.size >= 30, `the dashboard uses ${dash.size} metrics`);
      assert.deepEqual(missing(dash, types), [], "dashboard metrics missing from /metrics");
      assert.deepEqual(missing(alerts, types), [], "alert metrics missing from /metrics");
      // A histogram a panel takes quantiles of is really a histogram.
      for (const h of ["switchboard_fanout_latency_seconds", "switchboard_hook_call_duration_seconds"])
        assert.equal(types.get(h), "histogram", `${h} is a histogram`);
    });

    it("docs/monitoring.md lists every exported metric", async () => {
      const doc = readFileSync(join(ROOT, "docs", "monitoring.md"), "utf8");
      const listed = new Set([...doc.matchAll(/^- `(switchboard_[a-z_]+)[`{]/gm)].map((m) => m[1]));
      const exported = [...declared(await metricsText(server)).keys()].filter((n) =>
        n.startsWith("switchboard_"),
      );
      assert.deepEqual(
        exported.filter((n) => !listed.has(n)),
        [],
        "metrics missing from the list in docs/monitoring.md",
      );
      assert.deepEqual(
        [...listed].filter((n) => !exported.includes(n as string)),
        [],
        "docs/monitoring.md lists metrics the server does not export",
      );
    });
  });
});
