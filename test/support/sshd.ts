/**
 * A real OpenSSH server for the deploy tests: Debian's sshd on a free port of 127.0.0.1 with a temporary
 * host key, a temporary user key for the current user and its own known_hosts, started in the foreground
 * (`sshd -D`) as our child and stopped by `stop()`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import * as net from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { freePort } from "../../src/runtime/nginx.js";
import { waitFor } from "./wait.js";

export interface Sshd {
  port: number;
  user: string;
  /** The private key that logs in as `user`. */
  identity: string;
  knownHosts: string;
  /** `-o` options for the ssh client (known hosts, strict checking). */
  options: string[];
  stop(): Promise<void>;
}

async function findSshd(): Promise<string> {
  for (const p of ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]) {
    if ((await execa("test", ["-x", p], { reject: false })).exitCode === 0) return p;
  }
  throw new Error("sshd not found: install openssh-server (the tests' global setup does, as root)");
}

export async function startSshd(dir: string): Promise<Sshd> {
  const sshd = await findSshd();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const hostKey = join(dir, "host_ed25519");
  const identity = join(dir, "user_ed25519");
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", identity]);
  await writeFile(join(dir, "authorized_keys"), await readFile(`${identity}.pub`), { mode: 0o600 });
  // sshd refuses to start without its privilege separation directory (created by the Debian service otherwise)
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 }).catch(() => undefined);
  const port = await freePort();
  const user = userInfo().username;
  await writeFile(
    join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `AllowUsers ${user}`,
      "StrictModes no",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      "X11Forwarding no",
      "AllowTcpForwarding no",
      "PrintMotd no",
      "MaxStartups 100:30:200",
      "MaxSessions 50",
      "",
    ].join("\n"),
  );
  const knownHosts = join(dir, "known_hosts");
  const pub = (await readFile(`${hostKey}.pub`, "utf8")).trim().split(" ").slice(0, 2).join(" ");
  await writeFile(knownHosts, `[127.0.0.1]:${port} ${pub}\n`);

  let output = "";
  const child: ChildProcess = spawn(sshd, ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
  let exited = false;
  const gone = new Promise<void>((r) => child.once("exit", () => ((exited = true), r())));
  const stop = async () => {
    if (exited) return;
    // the listener first, then the sessions it forked (a connection an ssh client still shares)
    const sessions = (await readFile(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").catch(() => "")).split(/\s+/).filter(Boolean);
    child.kill("SIGTERM");
    for (const pid of sessions) {
      try {
        process.kill(Number(pid), "SIGTERM");
      } catch {
        /* gone */
      }
    }
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    if (!exited) child.kill("SIGKILL");
    await gone;
  };
  try {
    await waitFor(
      () => {
        if (exited) throw new Error(`sshd exited: ${output}`);
        return new Promise<boolean>((resolve) => {
          const s = net.connect({ host: "127.0.0.1", port }, () => (s.destroy(), resolve(true)));
          s.once("error", () => resolve(false));
        });
      },
      { timeout: 10_000, what: `sshd on 127.0.0.1:${port}` },
    );
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${output}`);
  }
  return {
    port,
    user,
    identity,
    knownHosts,
    options: [`UserKnownHostsFile=${knownHosts}`, "StrictHostKeyChecking=yes", "LogLevel=ERROR"],
    stop,
  };
}
