/**
 * Runs the built CLI (dist/src/cli.js) as a child process and waits for its `listening <url>` line,
 * the way devnet and real supervisors do.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const CLI = resolve(import.meta.dirname, "../../dist/src/cli.js");

export interface CliProcess {
  url: string;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait for exit; returns the exit code */
  stop(): Promise<number | null>;
  /** SIGKILL, like a crash */
  kill(): Promise<void>;
}

export function tempDir(prefix = "owlrun-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Starts the CLI and waits for `ready` on stdout (default: the `listening <url>` line). */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
  ready: RegExp = /^listening (\S+)$/m,
): Promise<CliProcess> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, OWLRUN_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no ${ready} on stdout within ${timeoutMs} ms; stderr:\n${err}`));
    }, timeoutMs);
    const onEarlyExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening; stderr:\n${err}`));
    };
    child.once("exit", onEarlyExit);
    child.stdout!.on("data", (d) => {
      out += d;
      const m = ready.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.off("exit", onEarlyExit);
      resolvePromise({
        url: m[1] ?? "",
        child,
        stdout: () => out,
        stderr: () => err,
        async stop() {
          if (child.exitCode !== null) return child.exitCode;
          child.kill("SIGTERM");
          return exited;
        },
        async kill() {
          if (child.exitCode !== null) return;
          child.kill("SIGKILL");
          await exited;
        },
      });
    });
  });
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolvePromise) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("exit", (code) => resolvePromise({ code, stdout, stderr }));
  });
}
