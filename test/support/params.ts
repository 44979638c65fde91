/** A stage's parameters as the runtime hands them over: validated against its schema, defaults filled in. */
import { Ajv, type JSONSchemaType } from 'ajv';

export function stageParams<P>(schema: JSONSchemaType<P>, raw: Record<string, unknown> = {}): P {
  const validate = new Ajv({ useDefaults: true, allErrors: true }).compile(schema);
  const params = structuredClone(raw);
  if (!validate(params)) throw new Error(`bad parameters: ${JSON.stringify(validate.errors)}`);
  return params;
}
