/**
 * Finding the real tools the tests and the bench run (redis-server, haproxy, chromium …): one place, so both look
 * in the same directories and name the same Debian package when one is missing.
 */
import { accessSync, constants, statSync } from "node:fs";
import path from "node:path";

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Absolute path of an executable on PATH, or else in /usr/sbin or /sbin (where Debian puts haproxy, and which a
 * non-root PATH often lacks), or null. scripts/test-setup looks in the same places.
 */
export function which(name: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean), "/usr/sbin", "/sbin"];
  for (const dir of dirs) if (executable(path.join(dir, name))) return path.join(dir, name);
  return null;
}

/** The path of a tool the test cannot run without; throws one clear line when it is missing. */
export function requireTool(name: string, debianPackage = name): string {
  const found = which(name);
  if (!found)
    throw new Error(
      `${name} is not installed: apt-get install -y ${debianPackage} (scripts/test-setup does this for the tests)`,
    );
  return found;
}
