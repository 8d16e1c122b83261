/** A schedule in words, for `tern schedules`: "At 09:00 (Europe/Berlin)", "Every 1 hour and 30 minutes". */
import type { ScheduleSpec } from "@tern/core";
import cronstrue from "cronstrue";

const UNITS: Readonly<Record<string, string>> = { s: "second", m: "minute", h: "hour", d: "day" };
const EPOCH = "1970-01-01T00:00:00.000Z";

export function scheduleInWords(spec: ScheduleSpec): string {
  if ("cron" in spec) {
    let words: string;
    try {
      words = cronstrue.toString(spec.cron, { use24HourTimeFormat: true });
    } catch {
      // An expression croner takes and cronstrue cannot put in words: the expression itself.
      words = `cron ${spec.cron}`;
    }
    return `${words} (${spec.timezone})`;
  }
  const parts = [...spec.every.matchAll(/(\d+)([smhd])/g)].map(([, count, unit]) => {
    const name = UNITS[unit as string] as string;
    return Number(count) === 1 ? `1 ${name}` : `${Number(count)} ${name}s`;
  });
  const words = parts.length === 1 && parts[0]?.startsWith("1 ") ? parts[0].slice(2) : parts.join(" and ");
  return `Every ${words}${spec.anchor === EPOCH ? "" : `, counted from ${spec.anchor}`}`;
}
