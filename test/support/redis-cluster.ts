import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { hasRedisServer, waitFor } from "./redis-server.ts";
import { freePort } from "./server-process.ts";

/**
 * A Redis Cluster of the test's own: three masters (no replicas) on loopback, each with its data
 * port and cluster bus port picked free, nodes.conf in a temp dir, created with
 * `redis-cli --cluster create`. Nothing is persisted; `close` kills every node and removes the dir.
 */
export type RedisClusterUnderTest = {
  nodes: { host: string; port: number }[];
  /** REDIS_CLUSTER_NODES for a server process. */
  seeds: string;
  /** SIGKILL one master: its slots stop answering, and after the node timeout the cluster is down. */
  kill(index: number): Promise<void>;
  /** Starts a killed master again on its ports; resolves once every node sees the cluster ok. */
  restart(index: number): Promise<void>;
  close(): Promise<void>;
};

export function hasRedisCluster(): boolean {
  return hasRedisServer() && spawnSync("redis-cli", ["--version"], { stdio: "ignore" }).status === 0;
}

/** A hook that starts a cluster may take this long on a loaded machine (three servers, create, agreement). */
export const CLUSTER_START_MS = 120_000;

/** The cluster's nodes notice a dead peer after this long; then the whole cluster refuses commands. */
export const CLUSTER_NODE_TIMEOUT_MS = 1_000;

export async function startRedisCluster(size = 3): Promise<RedisClusterUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), "redis-cluster-"));
  const children: { port: number; args: string[]; child: ChildProcess; exited: Promise<void> }[] = [];
  const launch = (args: string[]) => {
    const child = spawn("redis-server", args, { stdio: "ignore" });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    return { child, exited };
  };
  const stopAll = async () => {
    for (const { child } of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    await Promise.all(children.map(({ exited }) => exited));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < size; index++) {
      const [port, busPort] = [await freePort(), await freePort()];
      const args = [
        "--port",
        String(port),
        "--cluster-port",
        String(busPort),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `nodes-${port}.conf`,
        "--cluster-node-timeout",
        String(CLUSTER_NODE_TIMEOUT_MS),
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
      ];
      children.push({ port, args, ...launch(args) });
    }
    for (const { port } of children) await waitFor(() => answers(port), 10_000, `redis-server on ${port}`);
    await new Promise<void>((resolve, reject) =>
      execFile(
        "redis-cli",
        [
          "--cluster",
          "create",
          ...children.map(({ port }) => `127.0.0.1:${port}`),
          "--cluster-replicas",
          "0",
          "--cluster-yes",
        ],
        { timeout: 20_000 },
        (error, stdout, stderr) =>
          error ? reject(new Error(`redis-cli --cluster create failed: ${stderr || stdout}`)) : resolve(),
      ),
    );
    for (const { port } of children) {
      await waitFor(() => clusterOk(port, size), 20_000, `cluster state ok on ${port}`);
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  const nodes = children.map(({ port }) => ({ host: "127.0.0.1", port }));
  return {
    nodes,
    seeds: nodes.map((node) => `${node.host}:${node.port}`).join(","),
    kill: async (index) => {
      const node = children[index];
      if (!node) throw new Error(`no cluster node ${index}`);
      if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill("SIGKILL");
      await node.exited;
    },
    restart: async (index) => {
      const node = children[index];
      if (!node) throw new Error(`no cluster node ${index}`);
      // Same ports, same nodes.conf: it rejoins with the slots it owned.
      Object.assign(node, launch(node.args));
      for (const { port } of children) {
        await waitFor(() => clusterOk(port, size), 30_000, `cluster state ok on ${port} after the restart`);
      }
    },
    close: stopAll,
  };
}

async function answers(port: number): Promise<boolean> {
  const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Every node must see the cluster ok with all its slots assigned and every peer known. */
async function clusterOk(port: number, size: number): Promise<boolean> {
  const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null });
  client.on("error", () => {});
  try {
    await client.connect();
    const info = String(await client.cluster("INFO"));
    return (
      info.includes("cluster_state:ok") &&
      info.includes("cluster_slots_assigned:16384") &&
      info.includes(`cluster_known_nodes:${size}`)
    );
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
