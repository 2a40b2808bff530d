const MAX_RETRIES = 3;

export class Counter {
  constructor(start = 0) {
    this.count = start;
  }

  increment(step = 1, ...rest) {
    this.count += step + rest.length;
    return this.count;
  }
}

export function makeCounter(start) {
  const message = 'made';
  return [new Counter(start), message, MAX_RETRIES];
}
