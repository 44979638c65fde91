/**
 * The executions.list `filter` (AIP-160, https://google.aip.dev/160; fields in
 * https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions/list),
 * the subset the dispatcher sends: terms joined by AND, each `field="value"` or a parenthesised OR
 * of such; fields `state` and `labels.KEY`. Anything else is refused, as an unknown filter is by
 * Workflows (INVALID_ARGUMENT), so a filter the local API cannot honour never silently matches all.
 */
export interface Filterable {
  state: string;
  labels?: Record<string, string>;
}

const TERM = /^(state|labels\.[a-z][a-z0-9_-]{0,62})\s*=\s*"([^"]*)"$/;

function term(text: string): (execution: Filterable) => boolean {
  const match = TERM.exec(text.trim());
  if (!match) throw new Error(`unsupported filter term: ${text.trim()}`);
  const [, field, value] = match as unknown as [string, string, string];
  return field === 'state'
    ? (execution) => execution.state === value
    : (execution) => execution.labels?.[field.slice('labels.'.length)] === value;
}

export function executionFilter(filter: string): (execution: Filterable) => boolean {
  if (filter.trim() === '') return () => true;
  const conjuncts = filter.split(/\s+AND\s+/).map((part) => {
    const trimmed = part.trim();
    const inner = /^\((.*)\)$/.exec(trimmed)?.[1];
    const alternatives = (inner ?? trimmed).split(/\s+OR\s+/).map(term);
    return (execution: Filterable) => alternatives.some((matches) => matches(execution));
  });
  return (execution) => conjuncts.every((matches) => matches(execution));
}
