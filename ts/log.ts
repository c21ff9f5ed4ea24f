// The CLI's log, in runc's style: --log FILE (default stderr) and
// --log-format text|json (one `{"level","msg","time"}` object per line).
// Debug lines only with --debug; warnings and errors always go to the log
// file when there is one, because engines (containerd) read the last
// `error` line of it to report why a command failed.

import { appendFileSync, closeSync, openSync } from 'node:fs';

export type LogFormat = 'text' | 'json';
type Level = 'debug' | 'warning' | 'error';

let sink: { file?: string; format: LogFormat; enabled: boolean } = { format: 'text', enabled: false };

export function configureLog(options: { file?: string; format: LogFormat; debug: boolean }): void {
  sink = { file: options.file, format: options.format, enabled: options.debug };
}

function line(level: Level, msg: string): string {
  const time = new Date().toISOString();
  return sink.format === 'json' ? JSON.stringify({ level, msg, time }) + '\n' : `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`;
}

function write(level: Level, msg: string): void {
  try {
    if (sink.file) appendFileSync(sink.file, line(level, msg));
    else process.stderr.write(line(level, msg));
  } catch {
    // A log that cannot be written must not turn into a second failure.
  }
}

export function debug(msg: string): void {
  if (sink.enabled) write('debug', msg);
}

/** A problem that does not fail the command (a poststop hook failing). */
export function warn(msg: string): void {
  if (sink.file || sink.enabled) write('warning', msg);
  if (sink.file || !sink.enabled) process.stderr.write(`veil: warning: ${msg}\n`);
}

/** The reason a command fails, for the log file (stderr gets the `veil:` line). */
export function logError(msg: string): void {
  if (sink.file) write('error', msg);
}

/**
 * Where the sandbox writes its own log (strace lines, the system calls it
 * does not implement, its debug lines), in this log's format: the --log
 * file, else with --debug or --strace the CLI's stderr, else nowhere.
 * Never the application's stderr. `close` once the sandbox holds its copy.
 */
export function sandboxLog(strace: boolean): { fd: number; format: LogFormat; close: () => void } | undefined {
  if (sink.file) {
    const fd = openSync(sink.file, 'a');
    return { fd, format: sink.format, close: () => closeSync(fd) };
  }
  if (sink.enabled || strace) return { fd: 2, format: sink.format, close: () => undefined };
  return undefined;
}
