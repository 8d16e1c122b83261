/** States of a task run. */
export type TaskRunState =
  | "Pending"
  | "Running"
  | "Retrying"
  | "Success"
  | "Failed"
  | "TimedOut"
  | "Skipped"
  | "TriggerFailed"
  | "Cancelled";

/** Final states of an in-process flow run. */
export type FlowRunState = "Success" | "Failed" | "Cancelled";

/** Whether a task run in `state` is over. */
export function isFinished(state: TaskRunState): boolean {
  return state !== "Pending" && state !== "Running" && state !== "Retrying";
}

/** `Success` and `Skipped` count as successful for triggers and for the flow's state. */
export function isSuccessful(state: TaskRunState): boolean {
  return state === "Success" || state === "Skipped";
}

/** `Failed`, `TimedOut` and `TriggerFailed` count as failed for triggers and for the flow's state. */
export function isFailed(state: TaskRunState): boolean {
  return state === "Failed" || state === "TimedOut" || state === "TriggerFailed";
}
