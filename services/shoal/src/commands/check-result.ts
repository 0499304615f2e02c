/** One check's verdict: `ok` true (passed), 'warn' (works, but look) or false (broken; `fix` says what to do). */
export interface CheckResult {
  check: string;
  ok: boolean | 'warn';
  detail: string;
  fix?: string;
}
