import { describe, expect, it } from "vitest";
import { TRIGGERS, type TriggerName } from "../../src/flow/task-types.js";
import type { TaskRunState } from "../../src/runner/states.js";
import { triggerMet, type UpstreamRun, upstreamBlocker } from "../../src/runner/trigger-rules.js";

const S = "Success";
const K = "Skipped";
const F = "Failed";
const T = "TimedOut";
const X = "TriggerFailed";
const C = "Cancelled";

describe("triggerMet", () => {
  // Upstream states, then whether each trigger (in TRIGGERS order) lets the task run.
  const table: Array<[TaskRunState[], Record<TriggerName, boolean>]> = [
    [[S, S], { allSuccessful: true, allFinished: true, anySuccessful: true, anyFailed: false, allFailed: false }],
    [[S, K], { allSuccessful: true, allFinished: true, anySuccessful: true, anyFailed: false, allFailed: false }],
    [[S, F], { allSuccessful: false, allFinished: true, anySuccessful: true, anyFailed: true, allFailed: false }],
    [[F, T, X], { allSuccessful: false, allFinished: true, anySuccessful: false, anyFailed: true, allFailed: true }],
    [[C], { allSuccessful: false, allFinished: true, anySuccessful: false, anyFailed: false, allFailed: false }],
    [[K], { allSuccessful: true, allFinished: true, anySuccessful: true, anyFailed: false, allFailed: false }],
  ];
  for (const [states, expected] of table) {
    it.each(TRIGGERS.map((t) => [t, expected[t]] as const))(`%s after [${states.join(", ")}] is %s`, (t, met) => {
      expect(triggerMet(t, states)).toBe(met);
    });
  }
});

describe("upstreamBlocker", () => {
  const up = (...runs: Array<[string, TaskRunState]>): UpstreamRun[] => runs.map(([slug, state]) => ({ slug, state }));
  const opts = (trigger: TriggerName, skipOnUpstreamSkip = true) => ({ trigger, skipOnUpstreamSkip });

  it.each([
    ["no upstream runs, whatever the trigger", opts("allFailed"), up(), undefined],
    ["all upstream succeeded", opts("allSuccessful"), up(["a", S], ["b", S]), undefined],
    [
      "an upstream run was skipped (checked before the trigger)",
      opts("allFailed"),
      up(["a", F], ["b", K], ["c", K]),
      { state: "Skipped", message: 'upstream "b" was skipped' },
    ],
    [
      "a skipped upstream run counts as successful when skips do not propagate",
      opts("allSuccessful", false),
      up(["a", S], ["b", K]),
      undefined,
    ],
    [
      "a failed upstream run under allSuccessful",
      opts("allSuccessful"),
      up(["a", S], ["b", F]),
      { state: "TriggerFailed", message: 'trigger allSuccessful not met: upstream "a" is Success, "b" is Failed' },
    ],
    [
      "no failed upstream run under anyFailed",
      opts("anyFailed"),
      up(["a", S]),
      { state: "TriggerFailed", message: 'trigger anyFailed not met: upstream "a" is Success' },
    ],
    ["a timed-out upstream run under anyFailed", opts("anyFailed"), up(["a", S], ["b", T]), undefined],
  ] as const)("%s", (_, options, upstream, expected) => {
    expect(upstreamBlocker(options, upstream)).toEqual(expected);
  });
});
