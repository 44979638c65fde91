/**
 * Input locations: the Cloud Storage folders (`gs://BUCKET/PREFIX/`) a request's input may come
 * from, as one comma-separated list (Terraform sets it from the uploads bucket). One parser for
 * the functions, which refuse other inputs at admission, and the stages, which check again.
 */

const LOCATION = 'gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/(?:[A-Za-z0-9._-]+/)*';

/** The configuration value: one or more locations, comma-separated. */
export const LOCATIONS_PATTERN = `^${LOCATION}(?:,${LOCATION})*$`;

const LOCATIONS = new RegExp(LOCATIONS_PATTERN);

/** The locations in a configuration value; none when unset. Throws on a malformed value. */
export function parseLocations(value: string | undefined): string[] {
  if (value === undefined || value === '') return [];
  if (!LOCATIONS.test(value)) throw new Error(`not a comma-separated list of gs://BUCKET/PREFIX/ folders: ${value}`);
  return value.split(',');
}

/** The location `uri` lies under, with the rest of its name; undefined when none. */
export function locate(uri: string, locations: readonly string[]): { location: string; rest: string } | undefined {
  const location = locations.find((candidate) => uri.startsWith(candidate));
  return location === undefined ? undefined : { location, rest: uri.slice(location.length) };
}
