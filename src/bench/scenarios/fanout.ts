/**
 * Scenarios C and D: subscribers on one or many channels, publish rates stepping up. Each step publishes at a
 * fixed rate for `--duration` seconds, then waits for the deliveries to arrive (or stall), and collects
 * latency and counts from the clients. Stepping stops after `--stop-after-fail` unsustained steps.
 */

import { fmt } from "../format.js";
import type { Protocol } from "../load/client-conn.js";
import { RatePublisher } from "../rate-publisher.js";
import type { StepResult } from "../results.js";
import type { ScenarioOutcome } from "./outcome.js";
import { assertAlive, CpuMeter, connectWithProgress, type RunContext, withSession } from "./session.js";
import { toStepResult } from "./step-result.js";
import {
  awaitDeliveries,
  graceFor,
  PUBLISH_CONNECTIONS,
  SUBSCRIBE_TIMEOUT_MS,
  stepUp,
  warmUp,
} from "./stepping.js";

export interface FanoutShape {
  channels: number;
  prefix: string;
  rates: number[];
  /** Rate whose latency is reported as the scenario's reference figures. */
  refRate: number;
  /** Publish batches of the messages due together (see RatePublisher) instead of one message per request. */
  batch: boolean;
}

function describe(r: StepResult): string {
  return (
    `${fmt(r.rate)} msgs/s: ${r.deliveredPct.toFixed(2)}% of ${fmt(r.expected)} delivered, ` +
    `p50 ${fmt(r.p50Ms)} / p99 ${fmt(r.p99Ms)} / max ${fmt(r.maxMs)} ms, ${fmt(r.deliveriesPerSec)} deliveries/s, ` +
    `CPU: server ${fmt(r.serverCpuPct)}%, clients ${fmt(r.clientCpuPct)}%, other ${fmt(r.otherCpuPct)}%` +
    (r.unpublished > 0 ? `, ${fmt(r.unpublished)} not published` : "") +
    (r.backlogGrowth ? ", backlog growing" : "") +
    (r.sustained ? "" : "  ✗ not sustained")
  );
}

export function runFanout(ctx: RunContext, protocol: Protocol, shape: FanoutShape): Promise<ScenarioOutcome> {
  const { config } = ctx;
  const total = config.connections;
  const durationMs = config.durationS * 1000;
  const graceMs = graceFor(durationMs);
  return withSession(ctx, { workers: config.workers, connections: total }, async (s) => {
    const conn = await connectWithProgress(ctx, s, protocol, total);
    const sub = await s.fleet.subscribe(shape.channels, shape.prefix, SUBSCRIBE_TIMEOUT_MS);
    ctx.progress.log(
      `${ctx.tag}: ${fmt(conn.opened)} connected, ${fmt(sub.acked)} subscribed to ${fmt(shape.channels)} channel(s)` +
        (sub.errors > 0 ? `, ${sub.errors} subscribe errors` : ""),
    );
    if (sub.acked === 0) throw new Error("no subscription was acknowledged");
    const fanout = sub.acked / shape.channels;
    const publisher = new RatePublisher(s.server.port, PUBLISH_CONNECTIONS, { batch: shape.batch });
    const channelOf = (n: number) => `${shape.prefix}${n % shape.channels}`;
    let steps: StepResult[];
    try {
      if (!config.smoke) await warmUp(publisher, channelOf, fanout, graceMs, s.fleet);
      steps = await stepUp(shape.rates, config.stopAfterFail, async (rate, step) => {
        assertAlive(s.server);
        const cpu = new CpuMeter(s);
        await cpu.start();
        ctx.progress.status(`${ctx.tag}: publishing ${fmt(rate)} msgs/s for ${config.durationS} s`);
        const publish = await publisher.run({ step, rate, durationMs, channelOf });
        await awaitDeliveries(() => s.fleet.received(step), publish.published * fanout, graceMs);
        const reports = await s.fleet.take(step);
        const usage = await cpu.read();
        const result = toStepResult({ rate, fanout, publish, reports, durationMs, ...usage });
        ctx.progress.log(`${ctx.tag}: ${describe(result)}`);
        return result;
      });
    } finally {
      publisher.close();
    }
    const status = await s.fleet.status();
    // Deliveries counted in no step: say so rather than let them vanish from the figures silently.
    const stray = [
      status.late > 0 ? `${fmt(status.late)} deliveries arrived after their step was collected` : "",
      status.unparsed > 0 ? `${fmt(status.unparsed)} deliveries had no readable timestamp` : "",
    ].filter(Boolean);
    if (stray.length > 0) ctx.progress.log(`${ctx.tag}: ${stray.join(", ")}`);
    const summary = summarize(steps, shape.refRate, fanout);
    return {
      ...summary,
      figures: {
        ...summary.figures,
        subscribed: sub.acked,
        droppedByServer: status.droppedByServer,
        batched: shape.batch ? 1 : 0,
      },
    };
  });
}

export function summarize(steps: StepResult[], refRate: number, fanout: number): ScenarioOutcome {
  const sustained = steps.filter((r) => r.sustained);
  const best = sustained.reduce<StepResult | undefined>((a, r) => (!a || r.rate > a.rate ? r : a), undefined);
  const ref = steps.filter((r) => r.rate <= refRate).at(-1) ?? steps[0];
  return {
    steps,
    // CPU of the highest step: where the run broke, which shows who was the bottleneck.
    clientCpuPct: steps.at(-1)?.clientCpuPct,
    serverCpuPct: steps.at(-1)?.serverCpuPct,
    otherCpuPct: steps.at(-1)?.otherCpuPct,
    figures: {
      sustainedRate: best?.rate ?? 0,
      // 1 when even the last step was sustained: the true limit is higher than the rates tried.
      sustainedIsLowerBound: steps.at(-1)?.sustained ? 1 : 0,
      sustainedDeliveriesPerSec: best ? best.rate * fanout : 0,
      maxDeliveriesPerSec: Math.max(0, ...steps.map((r) => r.deliveriesPerSec)),
      refRate: ref?.rate ?? refRate,
      refP50Ms: ref?.p50Ms ?? Number.NaN,
      refP99Ms: ref?.p99Ms ?? Number.NaN,
      refMaxMs: ref?.maxMs ?? Number.NaN,
      refDeliveredPct: ref?.deliveredPct ?? Number.NaN,
      minDeliveredPct: Math.min(...steps.map((r) => r.deliveredPct)),
      fanout,
    },
  };
}
