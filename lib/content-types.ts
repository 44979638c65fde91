/**
 * The content type an input file is stored with, by its extension: what the CLI uploads with and what an
 * upload URL (POST /uploads) is signed for.
 */
const CONTENT_TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.zip': 'application/zip',
  '.json': 'application/json',
};

export const contentTypeOf = (name: string): string => {
  const dot = name.lastIndexOf('.');
  return (dot > 0 && CONTENT_TYPES[name.slice(dot).toLowerCase()]) || 'application/octet-stream';
};
