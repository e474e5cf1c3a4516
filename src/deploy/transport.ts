/**
 * How the deploy reaches a host: a local prefix runs the host script with `sh`, a remote one runs the
 * same script through the OpenSSH client (`ssh`, batch mode, never a password prompt).
 */
import { execa } from "execa";
import { HOST_SCRIPT } from "./host-script.js";

export interface HostResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SshOptions {
  /** `[user@]host` */
  destination: string;
  port?: number;
  identity?: string;
  /** Extra `-o Key=Value` options (e.g. `UserKnownHostsFile=...`). */
  options?: string[];
  /**
   * Folder for the connection-sharing sockets of this run: the steps of a deploy (about eight per host)
   * then share one SSH connection per host instead of a handshake each. `closeSsh` ends them.
   */
  controlDir?: string;
}

export interface Transport {
  /** "local" or the SSH destination. */
  describe(): string;
  /** End what the transport keeps open (an SSH master connection). */
  close(): Promise<void>;
  /** Host name or address to reach the edge over HTTP (health probes). */
  httpHost(): string;
  /** Run a sub-command of the host script; `input` goes to its stdin. */
  run(args: string[], opts?: { input?: Buffer; timeoutMs?: number }): Promise<HostResult>;
  /** Run a sub-command whose stdout is binary (a tar). */
  runBinary(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }>;
}

/** Quote one word for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function localTransport(): Transport {
  return {
    describe: () => "local",
    close: async () => undefined,
    async runBinary(args) {
      const r = await execa("sh", ["-c", HOST_SCRIPT, "sh", ...args], { reject: false, encoding: "buffer", stdin: "ignore", timeout: 120_000 });
      return { code: r.exitCode ?? 1, stdout: Buffer.from(r.stdout as Uint8Array), stderr: Buffer.from(r.stderr as Uint8Array).toString("utf8") };
    },
    httpHost: () => "127.0.0.1",
    async run(args, opts = {}) {
      const r = await execa("sh", ["-c", HOST_SCRIPT, "sh", ...args], {
        reject: false,
        stripFinalNewline: false,
        // own process group: a Ctrl-C in the terminal reaches the CLI, which lets a step in flight finish
        detached: true,
        input: opts.input,
        stdin: opts.input ? undefined : "ignore",
        timeout: opts.timeoutMs ?? 120_000,
      });
      return { code: r.exitCode ?? 1, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") + (r.timedOut ? "\n(timed out)" : "") };
    },
  };
}

export function sshArgs(ssh: SshOptions): string[] {
  const args = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"];
  if (ssh.port !== undefined) args.push("-p", String(ssh.port));
  if (ssh.identity) args.push("-i", ssh.identity, "-o", "IdentitiesOnly=yes");
  if (ssh.controlDir) args.push("-o", "ControlMaster=auto", "-o", `ControlPath=${ssh.controlDir}/%C`, "-o", "ControlPersist=120");
  for (const o of ssh.options ?? []) args.push("-o", o);
  return args;
}

/** End the shared connection of `ssh` (if any): `ssh -O exit`. */
export async function closeSsh(ssh: SshOptions): Promise<void> {
  if (!ssh.controlDir) return;
  await execa("ssh", [...sshArgs(ssh), "-O", "exit", "--", ssh.destination], { reject: false, stdin: "ignore", timeout: 10_000 });
}

export function sshTransport(ssh: SshOptions): Transport {
  const at = ssh.destination.lastIndexOf("@");
  const host = (at >= 0 ? ssh.destination.slice(at + 1) : ssh.destination).replace(/^\[|\]$/g, "");
  return {
    describe: () => `${ssh.destination}${ssh.port ? `:${ssh.port}` : ""}`,
    close: () => closeSsh(ssh),
    async runBinary(args) {
      const remote = ["sh", "-c", HOST_SCRIPT, "sh", ...args].map(shellQuote).join(" ");
      const r = await execa("ssh", [...sshArgs(ssh), "--", ssh.destination, remote], { reject: false, encoding: "buffer", stdin: "ignore", timeout: 120_000 });
      let stderr = Buffer.from(r.stderr as Uint8Array).toString("utf8");
      if (r.exitCode === 255) stderr = `ssh to ${ssh.destination} failed: ${stderr.trim()}`;
      return { code: r.exitCode ?? 1, stdout: Buffer.from(r.stdout as Uint8Array), stderr };
    },
    httpHost: () => (host.includes(":") ? `[${host}]` : host),
    async run(args, opts = {}) {
      // ssh joins its arguments into one command line for the remote shell: quote every word once.
      const remote = ["sh", "-c", HOST_SCRIPT, "sh", ...args].map(shellQuote).join(" ");
      const r = await execa("ssh", [...sshArgs(ssh), "--", ssh.destination, remote], {
        reject: false,
        stripFinalNewline: false,
        // own process group: a Ctrl-C in the terminal reaches the CLI, which lets a step in flight finish
        detached: true,
        input: opts.input,
        stdin: opts.input ? undefined : "ignore",
        timeout: opts.timeoutMs ?? 120_000,
      });
      let stderr = String(r.stderr ?? "") + (r.timedOut ? "\n(timed out)" : "");
      if (r.exitCode === 255) stderr = `ssh to ${ssh.destination} failed: ${stderr.trim()}`;
      return { code: r.exitCode ?? 1, stdout: String(r.stdout ?? ""), stderr };
    },
  };
}
