/**
 * Configuration comes from the environment, is validated once against a JSON schema, and a
 * missing or malformed value stops start-up with a message naming the variable.
 */
import { Ajv, type JSONSchemaType } from 'ajv';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Environment variables are strings; the schema says which ones are numbers or booleans and
 * ajv's `coerceTypes` converts them, so the schema stays the single source of truth.
 */
export function loadConfig<T>(schema: JSONSchemaType<T>, env: Record<string, string | undefined> = process.env): T {
  const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true });
  const validate = ajv.compile(schema);
  const properties = Object.keys((schema as { properties?: object }).properties ?? {});
  const candidate: Record<string, string> = {};
  for (const name of properties) {
    const value = env[name];
    if (value !== undefined && value !== '') candidate[name] = value;
  }
  if (validate(candidate)) return candidate;

  const problems = (validate.errors ?? []).map((error) => {
    const missing = (error.params as { missingProperty?: string }).missingProperty;
    const name = missing ?? error.instancePath.replace(/^\//, '');
    return missing ? `${name} is required` : `${name} ${error.message ?? 'is invalid'}`;
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}
