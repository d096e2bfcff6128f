// Service protection and fault injection. Dataverse's per-user limits over a sliding window
// (number of requests, combined execution time, concurrent requests), answered 429 with
// Retry-After as Dataverse does; and the faults a test can switch on: latency, and a throttle
// that answers every Nth request 429.
import { CODE_CONCURRENCY, CODE_EXECUTION, CODE_REQUESTS } from "./errors.mjs";
import { formatThousands, isPlainObject, sleep } from "./util.mjs";

/** Dataverse's published per-user service-protection limits (5-minute sliding window). */
export const DEFAULT_PROTECTION = Object.freeze({
  windowMs: 300_000,
  maxRequests: 6000,
  maxExecutionMs: 1_200_000,
  maxConcurrent: 52,
  costMs: Object.freeze({ GET: 2, POST: 10, PATCH: 10, DELETE: 10 }),
});

// Service protection: a sliding window of {t, n, c} entries (O(requests in the window))

class SlidingWindow {
  constructor(windowMs) {
    this.windowMs = windowMs;
    this.entries = [];
    this.head = 0;
    this.count = 0;
    this.cost = 0;
  }
  trim(now) {
    const e = this.entries;
    while (this.head < e.length && e[this.head].t <= now - this.windowMs) {
      this.count -= e[this.head].n;
      this.cost -= e[this.head].c;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > e.length) {
      this.entries = e.slice(this.head);
      this.head = 0;
    }
  }
  /** null when admitted, else {kind: "requests"|"execution", waitMs}. */
  check(now, n, c, maxRequests, maxExecutionMs) {
    this.trim(now);
    const needRequests = this.count + n - maxRequests;
    const needCost = this.cost + c - maxExecutionMs;
    if (needRequests <= 0 && needCost <= 0) return null;
    const kind = needRequests > 0 ? "requests" : "execution";
    if (n > maxRequests || c > maxExecutionMs) return { kind, waitMs: this.windowMs };
    let freedN = 0;
    let freedC = 0;
    for (let i = this.head; i < this.entries.length; i++) {
      freedN += this.entries[i].n;
      freedC += this.entries[i].c;
      if (freedN >= needRequests && freedC >= needCost) return { kind, waitMs: this.entries[i].t + this.windowMs - now };
    }
    return { kind, waitMs: this.windowMs };
  }
  add(now, n, c) {
    const last = this.entries[this.entries.length - 1];
    if (last && this.entries.length > this.head && last.t === now) {
      last.n += n;
      last.c += c;
    } else {
      this.entries.push({ t: now, n, c });
    }
    this.count += n;
    this.cost += c;
  }
}


/**
 * The limits of `protection` (null or false: none; true: Dataverse's; an object: Dataverse's with
 * those given changed) and the faults, with `latencyMs` before every answer. Each check answers
 * null (go on) or a refusal `{code, message, retryAfter}` (seconds), to be answered 429.
 */
export function createProtection({ protection = null, latencyMs = 0 } = {}) {
  const limits = protection
    ? {
        ...DEFAULT_PROTECTION,
        ...(isPlainObject(protection) ? protection : {}),
        costMs: { ...DEFAULT_PROTECTION.costMs, ...(isPlainObject(protection?.costMs) ? protection.costMs : {}) },
      }
    : null;
  let slidingWindow = limits ? new SlidingWindow(limits.windowMs) : null;
  const baseLatency = Number(latencyMs) || 0;
  const faults = { latencyMs: null, throttle: null, seen: 0, fired: 0 };

  const requestLimitMessage = () =>
    `Number of requests exceeded the limit of ${limits ? limits.maxRequests : DEFAULT_PROTECTION.maxRequests} over time window of ${Math.round((limits ? limits.windowMs : DEFAULT_PROTECTION.windowMs) / 1000)} seconds.`;

  /** More requests in flight than allowed: refused at once, before any latency. */
  function checkConcurrency(inFlight) {
    if (limits && inFlight > limits.maxConcurrent) return { code: CODE_CONCURRENCY, message: `Number of concurrent requests exceeded the limit of ${limits.maxConcurrent}.`, retryAfter: 1 };
    return null;
  }

  /** Waits the latency (the fault's when set, else `latencyMs`). */
  async function delay() {
    const latency = faults.latencyMs ?? baseLatency;
    if (latency > 0) await sleep(latency);
  }

  /** The throttle fault: every Nth request refused, at most `count` times. */
  function checkFault() {
    const throttle = faults.throttle;
    if (throttle) {
      faults.seen++;
      if (faults.seen % throttle.every === 0 && (throttle.count == null || faults.fired < throttle.count)) {
        faults.fired++;
        return { code: CODE_REQUESTS, message: requestLimitMessage(), retryAfter: throttle.retryAfter };
      }
    }
    return null;
  }

  /** Admits (and counts) a request of `method` in the window; `batch` is a parsed $batch POST. */
  function admit(method, batch) {
    if (!limits) return null;
    let operations = 1;
    let cost = limits.costMs[method] ?? limits.costMs.POST ?? 10;
    if (batch) {
      // A batch counts as one request towards the request limit unless told otherwise (the
      // reference: "a batch counts as fewer requests"); its operations' execution time all counts.
      operations = limits.batchCountsOperations ? Math.max(1, batch.operations) : 1;
      cost = 0;
      for (const item of batch.items) for (const r of item.changeset ? item.requests : [item.request]) cost += limits.costMs[r.method] ?? limits.costMs.POST ?? 10;
    }
    const now = performance.now();
    const verdict = slidingWindow.check(now, operations, cost, limits.maxRequests, limits.maxExecutionMs);
    if (verdict) {
      const retryAfter = Math.max(1, Math.ceil(verdict.waitMs / 1000));
      if (verdict.kind === "requests") return { code: CODE_REQUESTS, message: requestLimitMessage(), retryAfter };
      return {
        code: CODE_EXECUTION,
        message: `Combined execution time of incoming requests exceeded limit of ${formatThousands(limits.maxExecutionMs)} milliseconds over time window of ${Math.round(limits.windowMs / 1000)} seconds.`,
        retryAfter,
      };
    }
    slidingWindow.add(now, operations, cost);
    return null;
  }

  function setFaults(options = {}) {
    if (!isPlainObject(options)) throw new Error("sandbox/dataverse: setFaults({latencyMs, throttle}) needs an object");
    if ("latencyMs" in options) {
      const ms = options.latencyMs;
      if (ms == null) faults.latencyMs = null;
      else if (typeof ms === "number" && ms >= 0 && Number.isFinite(ms)) faults.latencyMs = ms;
      else throw new Error("sandbox/dataverse: latencyMs must be a non-negative number (or null for the default)");
    }
    if ("throttle" in options) {
      const th = options.throttle;
      if (th == null || th === false) faults.throttle = null;
      else {
        const every = Number(th.every ?? 1);
        const retryAfter = Number(th.retryAfter ?? 1);
        const count = th.count == null ? null : Number(th.count);
        if (!Number.isInteger(every) || every < 1) throw new Error("sandbox/dataverse: throttle.every must be a positive integer");
        if (!Number.isInteger(retryAfter) || retryAfter < 0) throw new Error("sandbox/dataverse: throttle.retryAfter must be a whole number of seconds");
        if (count !== null && (!Number.isInteger(count) || count < 0)) throw new Error("sandbox/dataverse: throttle.count must be a non-negative integer");
        faults.throttle = { every, retryAfter, count };
      }
      faults.seen = 0;
      faults.fired = 0;
    }
  }

  return {
    checkConcurrency,
    delay,
    checkFault,
    admit,
    setFaults,
    /** Starts an empty service-protection window, as if the last requests were 5 minutes ago. */
    reset() {
      if (limits) slidingWindow = new SlidingWindow(limits.windowMs);
    },
  };
}
