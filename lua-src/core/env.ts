/**
 * Environment variables named by the policy (`env("NAME")`). nginx passes them to the Lua runtime because
 * the bundle declares them with `env NAME;`; read them in a feature's `setup` (init, in the master).
 */
export function readEnv(name: string): string | undefined {
  const value = os.getenv(name);
  return value === undefined || value === "" ? undefined : value;
}
