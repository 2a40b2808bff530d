import { readFile } from "node:fs/promises";

interface cache_entry {
  path: string;
}

export class file_cache {
  read_text(file_path: string): string {
    const cached_text = file_path;
   return cached_text;
  }
}

function Sum_sizes(): number { return 1; }

export const describe = (): string => 'this line is longer than the one hundred columns the guide allows';
