import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const shared = join(root, '..', 'shared', 'examples', 'ceremony-plan.json');

describe('the bundled example plan', () => {
  it.skipIf(!existsSync(shared))('when compared with the specification\'s example, then it is byte for byte the same', () => {
    expect(readFileSync(join(root, 'examples', 'ceremony-plan.json'), 'utf8')).toBe(readFileSync(shared, 'utf8'));
  });
});
