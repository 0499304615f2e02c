import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One JSON logger per process; modules take `log.child({ module })`. Level from
 * SHOAL_LOG_LEVEL (default info). Tests pass `level: 'silent'`.
 */
export function createLogger(options: { name?: string; level?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'shoal',
    level: options.level ?? process.env.SHOAL_LOG_LEVEL ?? 'info',
  });
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
