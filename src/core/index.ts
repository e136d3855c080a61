// Public surface of chord-rerank's pure core (formats and math; no DOM, GPU or tfjs).
export * from './errors.ts';
export * from './strategy.ts';
export * from './prng.ts';
export * from './init.ts';
export * from './backbones.ts';
export * from './manifest.ts';
export * from './frozen.ts';
export * from './hash.ts';
export * from './quantize.ts';
export * from './packing.ts';
export * from './bitstream.ts';
export * from './crc32.ts';
export * from './allocation.ts';
export * from './budget.ts';
export * from './metrics.ts';
export * from './tensor-file.ts';
export * from './hypernet.ts';
