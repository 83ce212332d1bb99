// A process's memory from /proc (Linux): resident set now (VmRSS), its peak (VmHWM), and a
// sampler for the peak during a run.
import fs from 'node:fs';

/** VmRSS and VmHWM in MB; undefined off Linux or once the process is gone. */
export function memoryMb(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1]);
    return { rssMb: mb(kb('VmRSS')), hwmMb: mb(kb('VmHWM')) };
  } catch {
    return undefined;
  }
}

const mb = (kb) => (Number.isFinite(kb) ? Math.round(kb / 102.4) / 10 : undefined);

/**
 * Resets VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0), so the
 * peak read later is the peak of what follows, not of the start-up. False when not allowed.
 */
export function resetPeak(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Samples VmRSS every intervalMs until stop(), which returns the peak seen and the sample count. */
export function sampleRss(pid, intervalMs = 100) {
  let peakMb = 0;
  let samples = 0;
  const take = () => {
    const m = memoryMb(pid);
    if (m?.rssMb === undefined) return;
    samples++;
    if (m.rssMb > peakMb) peakMb = m.rssMb;
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { sampledPeakMb: samples > 0 ? peakMb : undefined, samples, intervalMs };
    },
  };
}
