/** The fleet Redis server's connection settings (src/features/redis.ts -> lua-src/core/redis.ts). */
export interface RedisData {
  host: string;
  port: number;
  db: number;
  timeoutMs: number;
  poolSize: number;
  idleMs: number;
  passwordEnv?: string;
}
