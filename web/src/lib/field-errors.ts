import { ApiError, describeError } from './api';
import type { FieldMessages } from './use-form';

export interface SplitRefusal<K extends string> {
  fields: FieldMessages<K>;
  /** messages the server gave for fields this form does not have */
  rest: string[];
  /** for the whole form: the server's sentence and the rest, or '' when every message found its field */
  message: string;
}

/**
 * Splits a refusal (`{error, message, fields?, reasons?}`) for a form with these fields: each named
 * field's message goes under it, a weak password's reasons under `options.password`, and what
 * found no field to the whole form.
 */
export function splitFieldErrors<K extends string>(error: unknown, names: readonly K[], options: { password?: K } = {}): SplitRefusal<K> {
  const fields: FieldMessages<K> = {};
  const rest: string[] = [];
  if (error instanceof ApiError) {
    for (const [name, text] of Object.entries(error.fields)) {
      if ((names as readonly string[]).includes(name)) fields[name as K] = text;
      else rest.push(text);
    }
    if (error.code === 'weak_password' && options.password !== undefined) {
      fields[options.password] = error.reasons.length > 0 ? error.reasons.map((r) => r.message) : error.message;
    }
  }
  const placed = Object.keys(fields).length > 0 && rest.length === 0;
  return { fields, rest, message: placed ? '' : [describeError(error), ...rest].join(' ') };
}
