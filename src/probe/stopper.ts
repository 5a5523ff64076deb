// Ctrl-C for the probe: the first SIGINT asks every wait to end early so the
// summary of what was done still gets printed.

export class Stopper {
  stopped = false;
  private readonly listeners = new Set<() => void>();

  trigger(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const fn of this.listeners) fn();
    this.listeners.clear();
  }

  /** Call fn on stop; returns the function that unsubscribes. */
  on(fn: () => void): () => void {
    if (this.stopped) {
      fn();
      return () => {};
    }
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Sleep ms, or less if stopped meanwhile. */
  sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.on(() => {
        clearTimeout(timer);
        resolve();
      });
      const timer = setTimeout(() => {
        off();
        resolve();
      }, ms);
    });
  }
}
