/** Which file names are photos the pipeline reads. */
const IMAGE = /\.(jpe?g|png|heic|heif|webp|tiff?)$/i;

/** Photos only; hidden files and macOS resource forks (`__MACOSX/`, `._x.jpg`) are not photos. */
export function isImageName(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return IMAGE.test(name) && !name.startsWith('.') && !path.includes('__MACOSX/');
}
