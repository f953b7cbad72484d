// The Driver: configuration, logger, metrics, readiness and health checks, built once and passed to
// every service. No module keeps global mutable state of its own.
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';

/** A named health check: resolves to a failure reason, or undefined when healthy. */
export type HealthCheck = () => Promise<string | undefined>;

export class Driver {
  readonly metrics: Metrics;
  readonly #checks = new Map<string, HealthCheck>();
  readonly #startup = new Set<string>();
  readonly #warnings = new Map<string, string>();

  constructor(
    readonly config: Config,
    readonly log: Logger,
  ) {
    this.metrics = new Metrics(config.driverName);
  }

  addHealthCheck(name: string, check: HealthCheck): void {
    this.#checks.set(name, check);
  }

  /** Runs every check in parallel; returns the failures as "name: reason". */
  async unhealthyReasons(): Promise<string[]> {
    const results = await Promise.all(
      [...this.#checks].map(async ([name, check]) => {
        try {
          const reason = await check();
          return reason ? `${name}: ${reason}` : undefined;
        } catch (err) {
          return `${name}: ${(err as Error).message}`;
        }
      }),
    );
    return results.filter((r): r is string => r !== undefined);
  }

  /** Marks start-up work in progress; Probe answers ready=false until every task has ended. */
  beginStartupTask(name: string): () => void {
    this.#startup.add(name);
    return () => {
      this.#startup.delete(name);
    };
  }

  get ready(): boolean {
    return this.#startup.size === 0;
  }

  get pendingStartupTasks(): string[] {
    return [...this.#startup];
  }

  /** Degraded-but-live conditions (e.g. API server unreachable) shown by /readyz and logs. */
  setWarning(name: string, message: string | undefined): void {
    if (message) this.#warnings.set(name, message);
    else this.#warnings.delete(name);
  }

  get warnings(): string[] {
    return [...this.#warnings].map(([k, v]) => `${k}: ${v}`);
  }
}
