import { loadConfig, type ConfigOf, type FlagSpecs } from '@shoal/core';

/** Arguments after the flags a command takes, e.g. `{ min: 1, max: 1, names: 'IMAGE' }`. */
export interface Positionals {
  min: number;
  max: number;
  names: string;
}

/** A subcommand as written: its flags, and a `run` typed by them (ConfigOf), so no flag needs a cast. */
export interface CommandSpec<S extends FlagSpecs> {
  summary: string;
  flags: S;
  positionals?: Positionals;
  run(config: ConfigOf<S>, positionals: string[]): Promise<void>;
}

/** A subcommand as the dispatcher sees it: flags for `--help`, and a start that loads and validates its own config. */
export interface Command {
  summary: string;
  flags: FlagSpecs;
  /** Loads flags and SHOAL_* variables (ConfigError with every problem), then runs. */
  start(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void>;
}

/** Binds a command's run to its flags' types: the config is loaded with the same specs it is typed by. */
export function defineCommand<S extends FlagSpecs>(spec: CommandSpec<S>): Command {
  return {
    summary: spec.summary,
    flags: spec.flags,
    async start(argv, env) {
      const { config, positionals } = loadConfig(spec.flags, argv, env, { positionals: spec.positionals });
      await spec.run(config, positionals);
    },
  };
}
