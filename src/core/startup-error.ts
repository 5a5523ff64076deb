/**
 * A startup failure the operator can fix (port in use, unusable token file,
 * metrics address unavailable): reported as one log line and exit status 1,
 * never as a stack trace. Each source has its own subclass.
 */
export class StartupError extends Error {}
