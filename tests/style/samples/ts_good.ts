import { readFile } from 'node:fs/promises';

export const MAX_RETRIES = 3;

/** A cache of file contents. */
export interface CacheEntry {
  path: string;
  text: string;
}

type EntryMap = Map<string, CacheEntry>;

export class FileCache {
  private entries: EntryMap = new Map();

  async readText(path: string, retries?: number): Promise<string> {
    const cached = this.entries.get(path);
    if (cached !== undefined) {
      return cached.text;
    }
    const text = await readFile(path, { encoding: 'utf-8' });
    this.entries.set(path, { path, text });
    const label = "it's here";
    return `${text}${label}${retries ?? MAX_RETRIES}`;
  }
}

export const formatSize = (byteCount: number): string =>
  `${byteCount} bytes`;

function sumSizes(...sizes: number[]): number {
  return sizes.reduce((total, size) => total + size, 0);
}

enum Unit { Byte, Kilobyte }
