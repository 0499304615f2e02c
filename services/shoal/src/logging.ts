import { pino, type Logger } from 'pino';
import PinoPretty from 'pino-pretty';
import { ConfigError, type FlagSpec } from '@shoal/core';
import { checkLogLevel } from './flags.js';

/** `json`: one JSON object per line (what log collectors expect); `pretty`: a line a person reads. */
export type LogFormat = 'json' | 'pretty';

export const logFormatFlag = {
  kind: 'string',
  help: 'json | pretty (default: pretty when standard output is a terminal, json otherwise)',
} satisfies FlagSpec<'string'>;

/** `--log-format`, or by whether the logs go to a terminal. */
export function resolveLogFormat(flag: string | undefined, isTTY: boolean): LogFormat {
  if (flag === undefined || flag === '') return isTTY ? 'pretty' : 'json';
  if (flag === 'json' || flag === 'pretty') return flag;
  throw new ConfigError([`--log-format: expected json or pretty, got ${JSON.stringify(flag)}`]);
}

/**
 * A service's logger. JSON lines on standard output unless the format is
 * `pretty`: then pino-pretty formats each line in this process (no worker
 * thread) as `HH:MM:ss.l LEVEL (name/module): message {fields}`.
 */
export function createServiceLogger(options: { name: string; level: string; format: LogFormat }): Logger {
  const base = { name: options.name, level: options.level };
  if (options.format === 'json') return pino(base);
  const stream = PinoPretty({
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    // Flushed line by line, so a crash loses nothing.
    sync: true,
    destination: 1,
  });
  return pino(base, stream);
}

/** The logger of a long-running command from its validated `--log-level` and `--log-format`. */
export function commandLogger(name: string, config: Record<string, unknown>): Logger {
  return createServiceLogger({
    name,
    level: checkLogLevel(config.logLevel as string),
    format: resolveLogFormat(config.logFormat as string | undefined, process.stdout.isTTY === true),
  });
}
