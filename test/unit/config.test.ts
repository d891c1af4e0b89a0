import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { describe, it } from "node:test";
import { type ConfigError, loadConfig } from "../../src/config.js";
import { Namespaces, namespaceOf } from "../../src/namespaces.js";

describe("loadConfig", () => {
  it("uses the documented defaults", () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.host, "0.0.0.0");
    assert.equal(c.workers, availableParallelism());
    assert.equal(c.redis, null);
    assert.equal(c.adminPort, 9090);
    assert.equal(c.instance, "default");
    assert.equal(c.drainTimeoutMs, 30000);
    assert.equal(c.maxPayloadBytes, 65536);
    assert.equal(c.maxBufferedBytes, 1024 * 1024);
    assert.equal(c.wsCompression, false);
    assert.ok(Object.isFrozen(c));
  });

  it("takes flag over environment over file over default", () => {
    const dir = mkdtempSync(`${tmpdir()}/sb-config-`);
    const file = `${dir}/c.json`;
    writeFileSync(file, JSON.stringify({ port: 1, instance: "file", logLevel: "warn", workers: 3 }));
    const c = loadConfig({ flags: { port: "3", config: file }, env: { PORT: "2", INSTANCE: "env" } });
    assert.deepEqual([c.port, c.instance, c.logLevel, c.workers], [3, "env", "warn", 3]);
  });

  it("reports every problem at once, each naming flag, variable and value", () => {
    assert.throws(
      () =>
        loadConfig({
          env: { PORT: "http", WORKERS: "-1", REDIS_URL: "localhost:6379", LOG_LEVEL: "chatty" },
        }),
      (err: ConfigError) => {
        assert.equal(err.problems.length, 4);
        assert.match(err.problems[0] ?? "", /^--port \(PORT\) = "http": /);
        assert.ok(
          err.problems.some((p) => p.startsWith('--redis (REDIS_URL) = "localhost:6379": expected redis://')),
        );
        assert.ok(err.problems.some((p) => p.startsWith('--log-level (LOG_LEVEL) = "chatty"')));
        return true;
      },
    );
  });

  it("rejects contradictory settings", () => {
    assert.throws(() => loadConfig({ env: { REDIS_CLUSTER: "true" } }), /needs --redis/);
    assert.throws(() => loadConfig({ env: { JWT_SECRET: "a", JWT_PUBLIC_KEY: "b" } }), /set one, not both/);
    assert.throws(
      () => loadConfig({ flags: { adminHost: "0.0.0.0" } }),
      /--admin-host .* set --admin-password/,
    );
    assert.equal(loadConfig({ flags: { adminHost: "0.0.0.0", adminPassword: "pw" } }).adminHost, "0.0.0.0");
    assert.equal(loadConfig({ flags: { adminHost: "127.0.0.2" } }).adminPassword, null);
  });

  it("parses booleans from the environment", () => {
    assert.equal(loadConfig({ env: { WS_COMPRESSION: "1" } }).wsCompression, true);
    assert.equal(loadConfig({ env: { WS_COMPRESSION: "false" } }).wsCompression, false);
  });

  it("finds a channel's namespace", () => {
    assert.equal(namespaceOf("chat:1"), "chat");
    assert.equal(namespaceOf("news"), "");
  });

  it('resolves per-namespace settings: own entry, then the "" entry, then the flags', () => {
    const dir = mkdtempSync(`${tmpdir()}/sb-config-`);
    const file = `${dir}/c.json`;
    writeFileSync(
      file,
      JSON.stringify({
        historySize: 100,
        publishNamespaces: "chat,game",
        namespaces: {
          chat: { historySize: 50, historyTtlMs: 120000 },
          "": { historyTtlMs: 60000 },
          feed: { clientPublish: true },
        },
      }),
    );
    const ns = new Namespaces(loadConfig({ flags: { config: file } }));
    assert.deepEqual(ns.of("chat:1"), {
      historySize: 50,
      historyTtlMs: 120000,
      clientPublish: true,
      presence: false,
      joinLeave: false,
      subscribeHook: true,
      publishHook: true,
    });
    assert.deepEqual(ns.of("news"), {
      historySize: 100,
      historyTtlMs: 60000,
      clientPublish: false,
      presence: false,
      joinLeave: false,
      subscribeHook: true,
      publishHook: true,
    });
    assert.equal(
      ns.of("game:7").clientPublish,
      true,
      "--publish-namespaces still counts for unconfigured ones",
    );
    assert.equal(ns.of("feed:x").clientPublish, true);
    assert.equal(ns.of("other:x").clientPublish, false);
    assert.equal(ns.shortestTtlMs, 60000);
    // The flag and the environment take the same as JSON text.
    const fromEnv = new Namespaces(loadConfig({ env: { NAMESPACES: '{"chat":{"historySize":5}}' } }));
    assert.equal(fromEnv.of("chat:a").historySize, 5);
  });

  it("reads secrets from files (trailing newline dropped), and names the flag of one it cannot read", () => {
    const dir = mkdtempSync(`${tmpdir()}/sb-secret-`);
    writeFileSync(`${dir}/key`, "k-123\n");
    writeFileSync(`${dir}/empty`, "");
    assert.equal(loadConfig({ flags: { apiKeyFile: `${dir}/key` } }).apiKey, "k-123");
    const problems = (flags: Record<string, unknown>): string[] => {
      try {
        loadConfig({ flags });
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    assert.match(
      problems({ jwtSecretFile: `${dir}/nope` })[0] ?? "",
      /^--jwt-secret-file \(JWT_SECRET_FILE\) = ".*nope": cannot read it/,
    );
    assert.match(problems({ apiKeyFile: `${dir}/empty` })[0] ?? "", /the file is empty/);
    assert.match(problems({ apiKeyFile: `${dir}/key`, apiKey: "x" })[0] ?? "", /set one, not both/);
  });

  it("names the namespace key at fault", () => {
    const problem = (namespaces: unknown): string => {
      try {
        loadConfig({ env: { NAMESPACES: JSON.stringify(namespaces) } });
        return "";
      } catch (err) {
        return (err as ConfigError).problems.join("\n");
      }
    };
    assert.match(
      problem({ chat: { historySize: -1 } }),
      /^--namespaces \(NAMESPACES\) = .*chat\.historySize: /,
    );
    assert.match(problem({ chat: { histroySize: 5 } }), /chat: .*histroySize/);
    assert.match(problem({ "bad name": {} }), /namespace names/);
    assert.equal(problem({ chat: { clientPublish: true, presence: true } }), "");
  });
});
