// How both of the product's message protocols are built (engine ↔ host in ./protocol.ts, host ↔
// panel in ../webview/protocol.ts): every message carries its protocol's version and a type tag,
// is described by a valibot schema, and is validated on receipt, nested fields included, with an
// error that names the field. Imports nothing but valibot, so the panel's bundle can use it.
import * as v from 'valibot';

/** Field schemas both protocols use. */
export const count = v.pipe(v.number(), v.integer(), v.minValue(0));
export const finite = v.pipe(v.number(), v.finite());

/** A message without its version field (distributes over the union, member by member). */
export type MessageBody<T> = T extends unknown ? Omit<T, 'v'> : never;

/** 'field "a.b.2": why' for the first problem valibot found. */
export function describeIssue(issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  const where = v.getDotPath(issue);
  return `${where ? `field "${where}"` : 'value'}: ${issue.message}`;
}

export class VersionedProtocol<V extends number> {
  constructor(readonly version: V, private readonly ErrorType: new (text: string) => Error) {}

  /** The schema of one message type: its fields, the protocol's version and the type tag. */
  readonly message = <T extends string, E extends v.ObjectEntries>(type: T, entries: E) =>
    v.object({ v: v.literal(this.version), type: v.literal(type), ...entries });

  /** `raw` checked against `schema` (a variant of messages), or an error naming the sender, the type and the field. */
  parse<S extends v.GenericSchema>(schema: S, raw: unknown, side: string): v.InferOutput<S> {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new this.ErrorType(`${side} message is not an object`);
    const fields = raw as Record<string, unknown>;
    if (fields.v !== this.version) {
      throw new this.ErrorType(`${side} message has protocol version ${JSON.stringify(fields.v)}, expected ${this.version}`);
    }
    const result = v.safeParse(schema, raw);
    if (result.success) return result.output;
    const first = result.issues[0];
    if (first.path?.[0]?.key === 'type' || (first.kind === 'schema' && first.type === 'variant' && !first.path)) {
      throw new this.ErrorType(`unknown ${side} message type ${JSON.stringify(fields.type)}`);
    }
    throw new this.ErrorType(`${side} message "${String(fields.type)}": ${describeIssue(result.issues)}`);
  }

  /** A message body with the version filled in. */
  stamp<B extends object>(body: B): B & { v: V } {
    return { v: this.version, ...body };
  }
}
