// Typed errors of the runtime core. The CLI prints any VeilError as one
// `veil: <message>` line; the wording of these messages is what container
// engines match on ("does not exist", "container not running").

/** A problem to report as `veil: <message>`, without a stack trace. */
export class VeilError extends Error {}

/** The id names no container under the root directory. */
export class NotFoundError extends VeilError {
  constructor(readonly id: string) {
    super(`container "${id}" does not exist`);
  }
}

/** The container is in a state that does not allow the operation. */
export class StateError extends VeilError {}

/** config.json or a process.json is not what the runtime spec allows. */
export class SpecError extends VeilError {}
