// The CLI's debug log, in runc's style: --log FILE (default stderr) and
// --log-format text|json. Silent unless --debug.

import { appendFileSync } from 'node:fs';

export type LogFormat = 'text' | 'json';

let sink: { file?: string; format: LogFormat; enabled: boolean } = { format: 'text', enabled: false };

export function configureLog(options: { file?: string; format: LogFormat; debug: boolean }): void {
  sink = { file: options.file, format: options.format, enabled: options.debug };
}

export function debug(msg: string): void {
  if (!sink.enabled) return;
  const time = new Date().toISOString();
  const line =
    sink.format === 'json' ? JSON.stringify({ level: 'debug', msg, time }) + '\n' : `time="${time}" level=debug msg="${msg}"\n`;
  if (sink.file) appendFileSync(sink.file, line);
  else process.stderr.write(line);
}
