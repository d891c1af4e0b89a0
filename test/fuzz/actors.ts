/**
 * The fuzzers: each sends one kind of hostile input to a running server and checks every answer against what
 * the server documents (src/errors.ts). They share a budget of inputs and a seeded Random, and record anything
 * undocumented as a finding (with enough detail to replay it from the seed).
 */
import { connect } from "node:net";
import { closeCodes, errorCodes } from "../../src/errors.js";
import { sleep } from "../helpers/server.js";
import type { Random } from "./random.js";
import { RawWs } from "./raw-ws.js";

export type Findings = { problems: string[]; counts: Record<string, number> };

const CODES = new Set(Object.keys(errorCodes));
const STATUSES = new Set<number>([101, 200, 307, ...Object.values(errorCodes).map((e) => e.http)]);
/** Documented close codes, plus "no close frame" (1006 to a browser) and the ws library's own normal close. */
const CLOSES = new Set<number | null>([null, 1000, 1005, ...Object.keys(closeCodes).map(Number)]);
const SERVER_TYPES = new Set(["ack", "error", "pong", "message", "reconnect"]);

function count(f: Findings, key: string): void {
  f.counts[key] = (f.counts[key] ?? 0) + 1;
}

function problem(f: Findings, text: string): void {
  if (f.problems.length < 20) f.problems.push(text);
}

/** Checks one JSON answer (a raw frame, an ack) for an undocumented code. */
function checkReply(f: Findings, where: string, value: unknown): void {
  const code =
    (value as { code?: unknown; error?: { code?: unknown } } | null)?.code ??
    (value as { error?: { code?: unknown } } | null)?.error?.code;
  if (code === undefined) return;
  count(f, `code ${String(code)}`);
  if (typeof code !== "string" || !CODES.has(code))
    problem(f, `${where}: undocumented code ${JSON.stringify(code)}`);
  if (code === "internal")
    problem(f, `${where}: internal error (a server fault) for ${JSON.stringify(value).slice(0, 200)}`);
}

/** A protocol frame, valid or nearly: the part of the input space where the server's own rules are exercised. */
function protocolFrame(rng: Random): unknown {
  const type = rng.pick(["subscribe", "unsubscribe", "publish", "ping", "refresh", "nope", undefined]);
  const frame: Record<string, unknown> = { type };
  if (rng.chance(0.8))
    frame.channel = rng.pick(["news", "chat:1", "chat:fuzz", "", "a b", "x".repeat(200), rng.string(12)]);
  if (rng.chance(0.5)) frame.id = rng.pick([1, "a", -1, 1.5, null, {}, rng.int(1000)]);
  if (rng.chance(0.3)) frame.since = rng.pick([0, 1, -1, 1.5, "1", 2 ** 60, rng.int(100)]);
  if (rng.chance(0.2)) frame.epoch = rng.pick(["", "x".repeat(100), rng.string(8), 7]);
  if (rng.chance(0.4)) frame.data = rng.json();
  if (rng.chance(0.1)) frame.idempotencyKey = rng.pick(["", "k", "k".repeat(200), 5]);
  if (rng.chance(0.1)) frame.token = rng.string(30);
  return frame;
}

/** Every 20 inputs an actor pauses a moment, so that the server's answers arrive, and checks them. */
async function breathe(i: number, settle: () => void): Promise<void> {
  if (i % 20 !== 19) return;
  await sleep(5);
  settle();
}

/** The last answers get a moment to arrive and are checked; then the connection is closed. */
async function finish(ws: RawWs | null, settle: () => void): Promise<void> {
  await sleep(100);
  settle();
  ws?.close();
}

/** Raw WebSocket frames on /ws: JSON (valid, mutated, deep, huge), binary, bad UTF-8, control and broken frames. */
export async function fuzzWsFrames(port: number, rng: Random, inputs: number, f: Findings): Promise<void> {
  let ws: RawWs | null = null;
  let checked = 0;
  /** Codes of close frames the fuzzer sent on this connection. */
  let echoed = new Set<number>();
  const settle = () => {
    if (!ws) return;
    for (const text of ws.texts().slice(checked)) {
      checked += 1;
      let frame: { type?: unknown } | null = null;
      try {
        frame = JSON.parse(text) as { type?: unknown };
      } catch {
        problem(f, `ws: a server frame that is not JSON: ${text.slice(0, 100)}`);
        continue;
      }
      if (!SERVER_TYPES.has(String(frame?.type)))
        problem(f, `ws: undocumented frame type ${text.slice(0, 100)}`);
      checkReply(f, "ws", frame);
    }
  };
  for (let i = 0; i < inputs; i++) {
    if (!ws || ws.ended) {
      if (ws) {
        settle();
        // A close frame the fuzzer sent is echoed with its own code (RFC 6455 §5.5.1): that is not the server's.
        const echo = ws.closeCode !== null && echoed.has(ws.closeCode);
        if (!CLOSES.has(ws.closeCode) && !echo) problem(f, `ws: undocumented close code ${ws.closeCode}`);
        count(f, `ws close ${echo ? "echoed" : ws.closeCode}`);
      }
      echoed = new Set();
      ws = await RawWs.open(port, "/ws").catch((err: Error) => {
        problem(f, `ws: upgrade failed: ${err.message}`);
        return null;
      });
      checked = 0;
      if (!ws) {
        await sleep(50);
        continue;
      }
    }
    const kind = rng.int(100);
    if (kind < 45) ws.text(JSON.stringify(protocolFrame(rng)));
    else if (kind < 60) ws.text(rng.mutate(Buffer.from(JSON.stringify(protocolFrame(rng)))));
    else if (kind < 65)
      ws.text(
        `{"type":"publish","channel":"chat:d","data":${"[".repeat(5000 + rng.int(20000))}1${"]".repeat(5000)}}`,
      );
    else if (kind < 68)
      ws.text(
        JSON.stringify({
          type: "publish",
          channel: "chat:big",
          data: "b".repeat(rng.pick([4000, 70_000, 300_000])),
        }),
      );
    else if (kind < 74) ws.send({ opcode: 2, payload: rng.bytes(rng.int(200)) });
    else if (kind < 78) ws.send({ opcode: 1, payload: Buffer.from([0xff, 0xfe, 0xc3, 0x28]) });
    else if (kind < 84)
      ws.send({ opcode: rng.pick([9, 10]), payload: rng.bytes(rng.pick([0, 10, 125, 126, 200])) });
    else if (kind < 88) {
      ws.send({ opcode: 1, payload: Buffer.from('{"type":"pi'), fin: false });
      ws.send({ opcode: 0, payload: Buffer.from('ng","id":"frag"}') });
    } else if (kind < 91) ws.send({ opcode: rng.pick([3, 4, 5, 6, 7, 11, 12, 15]), payload: rng.bytes(4) });
    else if (kind < 94) ws.send({ opcode: 1, payload: Buffer.from('{"type":"ping"}'), masked: false });
    else if (kind < 96) ws.send({ opcode: 1, payload: Buffer.from('{"type":"ping"}'), rsv: rng.int(8) });
    else {
      const payload = rng.bytes(rng.pick([0, 1, 2, 5]));
      if (payload.length >= 2) echoed.add(payload.readUInt16BE(0));
      ws.send({ opcode: 8, payload });
    }
    count(f, "ws inputs");
    await breathe(i, settle);
  }
  await finish(ws, settle);
}

/** Engine.IO and Socket.IO packets over a raw WebSocket: broken packets, odd events and arguments, bad acks. */
export async function fuzzSocketIo(port: number, rng: Random, inputs: number, f: Findings): Promise<void> {
  let ws: RawWs | null = null;
  let checked = 0;
  const settle = () => {
    if (!ws) return;
    for (const text of ws.texts().slice(checked)) {
      checked += 1;
      const ack = /^43\d+(\[.*)$/s.exec(text)?.[1];
      if (!ack) continue;
      try {
        checkReply(f, "socket.io ack", (JSON.parse(ack) as unknown[])[0]);
      } catch {
        problem(f, `socket.io: an ack that is not JSON: ${text.slice(0, 100)}`);
      }
    }
  };
  for (let i = 0; i < inputs; i++) {
    if (!ws || ws.ended) {
      settle();
      ws = await RawWs.open(port, "/socket.io/?EIO=4&transport=websocket").catch(() => null);
      checked = 0;
      if (!ws) {
        count(f, "socket.io refused");
        await sleep(50);
        continue;
      }
      ws.text("40");
    }
    const id = rng.int(1000);
    const event = rng.pick(["subscribe", "unsubscribe", "publish", "refresh", "other", "", 5]);
    const args = Array.from({ length: rng.int(4) }, () => rng.json());
    const kind = rng.int(100);
    if (kind < 55) ws.text(`42${id}${JSON.stringify([event, ...args])}`);
    else if (kind < 70) ws.text(rng.mutate(Buffer.from(`42${id}${JSON.stringify([event, ...args])}`)));
    else if (kind < 75) ws.text(`42${id}["publish","chat:x",${"[".repeat(20000)}${"]".repeat(20000)}]`);
    else if (kind < 80)
      ws.text(`45${rng.int(3)}-${id}${JSON.stringify([event, { _placeholder: true, num: rng.int(3) }])}`);
    else if (kind < 90)
      ws.text(rng.pick(["2", "3", "6", "1", "5", "4", "41", "44", "40/x,", "4x", ""]) + rng.string(8));
    else ws.send({ opcode: 2, payload: rng.bytes(rng.int(64)) });
    count(f, "socket.io inputs");
    await breathe(i, settle);
  }
  await finish(ws, settle);
}

const ROUTES = [
  "/api/publish",
  "/api/presence?channel=news",
  "/api/emit",
  "/health",
  "/ready",
  "/",
  "/ws",
  "/x",
];

/** One raw HTTP exchange: the status (0: no answer in time) and the body. */
function exchange(port: number, bytes: Buffer, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let got = "";
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0);
      resolve({ status, body: got.slice(got.indexOf("\r\n\r\n") + 4) });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (/\r\n\r\n/.test(got) && /content-length: (\d+)/i.test(got)) {
        const length = Number(/content-length: (\d+)/i.exec(got)?.[1]);
        if (Buffer.byteLength(got.slice(got.indexOf("\r\n\r\n") + 4), "latin1") >= length) done();
      }
    });
    socket.on("close", done);
    socket.on("error", () => {});
    socket.end(bytes);
  });
}

/** HTTP requests and bodies for every route, and garbage as the balancer's first bytes. */
export async function fuzzHttp(port: number, rng: Random, inputs: number, f: Findings): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < inputs; i++) {
    const kind = rng.int(100);
    let bytes: Buffer;
    if (kind < 10) bytes = rng.bytes(rng.int(300));
    else {
      const method = rng.pick(["GET", "POST", "PUT", "DELETE", "OPTIONS", "FUZZ", "GET "]);
      const path = rng.chance(0.8) ? rng.pick(ROUTES) : `/${rng.string(20)}`;
      const body = rng.pick([
        JSON.stringify({ channel: "news", data: rng.json() }),
        JSON.stringify({
          messages: Array.from({ length: rng.int(5) }, () => ({ channel: rng.string(5), data: rng.json() })),
        }),
        JSON.stringify({
          room: rng.string(6),
          channel: rng.string(6),
          event: rng.string(6),
          args: [rng.json()],
        }),
        JSON.stringify(rng.json()),
        rng.mutate(Buffer.from(JSON.stringify({ channel: "news", data: 1 }))).toString("latin1"),
        `{"channel":"a","data":${"[".repeat(30000)}${"]".repeat(30000)}}`,
        "",
      ]);
      const headers = [`Host: x`];
      if (rng.chance(0.8))
        headers.push(`Content-Length: ${rng.chance(0.8) ? Buffer.byteLength(body) : rng.int(100_000)}`);
      if (rng.chance(0.1)) headers.push("Transfer-Encoding: chunked");
      if (rng.chance(0.1)) headers.push(`X-Forwarded-For: 203.0.113.${rng.int(255)}`);
      if (rng.chance(0.05)) headers.push(`X-Big: ${"h".repeat(rng.pick([1000, 17_000]))}`);
      if (rng.chance(0.05)) headers.push(rng.string(30));
      const head = `${method} ${path} ${rng.chance(0.95) ? "HTTP/1.1" : rng.pick(["HTTP/1.0", "HTTP/2.0", "FOO"])}\r\n${headers.join("\r\n")}\r\n\r\n`;
      bytes = Buffer.concat([Buffer.from(head, "latin1"), Buffer.from(body, "latin1")]);
      if (rng.chance(0.1)) bytes = rng.mutate(bytes);
    }
    const p = exchange(port, bytes).then(({ status, body }) => {
      count(f, `http ${status}`);
      if (status === 0) return; // no answer: garbage the balancer dropped, or a body it still waits for
      if (!STATUSES.has(status))
        problem(f, `http: undocumented status ${status} for ${bytes.toString("latin1").slice(0, 120)}`);
      if (status === 500) problem(f, `http: 500 for ${bytes.toString("latin1").slice(0, 200)}`);
      if (body.startsWith("{")) {
        try {
          checkReply(f, "http", JSON.parse(body));
        } catch {
          // a body cut by the timeout
        }
      }
    });
    inFlight.add(p);
    void p.then(() => inFlight.delete(p));
    if (inFlight.size >= 20) await Promise.race(inFlight);
    count(f, "http inputs");
  }
  await Promise.all(inFlight);
}
