// Errors the user fixes by changing what they gave us (a setting, a flag, a
// file, a manifest, a policy): every command answers them with a message and
// exit code 2, never a stack trace. Anything else is a bug or an outage.
export class UsageError extends Error {}
