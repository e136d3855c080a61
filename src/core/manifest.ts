/**
 * The model manifest: everything a device needs to rebuild the frozen backbone (backbone, dims,
 * seed, layer list) plus the SHA-256 of the frozen weights so a device can prove it rebuilt the
 * same numbers as the cloud. Manifests arrive as JSON, so parsing validates every field and
 * rejects a layer list that disagrees with what the dims derive.
 *
 * Where the frozen weights come from (`frozenWeights`):
 * - 'seed' (or absent, as in every manifest written before the field existed): regenerated from
 *   `seed` (src/core/frozen.ts); the backbone tensors must not carry layer weights.
 * - 'shipped': a frozen-pretrained (or Base) model; the weights are the backbone tensors named
 *   after the layers, all of them, and `frozenWeightsHash` is the hash of those. `seed` then
 *   plays no part in the frozen weights.
 * Either way one hash pins the exact numbers a device quantizes, and a strategy bitstream names
 * that hash, so a strategy never applies to other weights than the ones it was made for.
 *
 * Where the item table comes from (`version`):
 * - version 1: float32 `item_emb` [numItems + 1, dim] inside backbone.bin; the page quantizes it to
 *   core's 8-bit layout (src/core/item-table.ts) on the first download.
 * - version 2: the table is served already in that 8-bit layout as a file of its own,
 *   `itemTable.file` (item_emb.q8), pinned by its byte length and SHA-256, and backbone.bin holds
 *   no item_emb. At hidden 64 that is 66 B a row instead of 256 B: a shop-size model downloads
 *   about a quarter, and the page scores with the very bytes it would have made itself.
 * The layout of the model folder changes with it (backbone.bin is no longer complete), so it is
 * a new version, not an optional field: a page that reads only version 1 stops at `version` with
 * a ManifestError (MANIFEST_INVALID) instead of looking for item_emb in backbone.bin, and this
 * code names a version newer than 2 MANIFEST_VERSION_UNSUPPORTED. A version-1 manifest stays
 * byte for byte what it was, so stored copies (keyed by the manifest's hash) keep working.
 */
// zod/mini: the same checks as zod's chainable API, but tree-shakable. The chainable API put 454 kB of
// minified zod into every page bundle (esbuild, createReranker only); this form puts 24 kB.
import * as z from 'zod/mini';
import { BackboneDimsError, MAX_DIM, backboneLayers } from './backbones.ts';
import type { BackboneConfig, LayerSpec } from './backbones.ts';
import { ChordError, type ErrorCodeOf } from './errors.ts';
import { generateFrozenWeights, hashFrozenWeights, shippedFrozenWeights } from './frozen.ts';
import type { FrozenLayer, LayerTensors } from './frozen.ts';
import { ITEM_TABLE_SCHEME, itemTableByteLength, itemTableFromBytes } from './item-table.ts';
import type { ItemTableQ8 } from './item-table.ts';

export const MANIFEST_FORMAT = 'chord-manifest';
/** The item table is float32 `item_emb` in backbone.bin (see the module comment). */
export const MANIFEST_VERSION = 1;
/** The item table is its own file in core's 8-bit layout (see the module comment). */
export const MANIFEST_VERSION_ITEM_TABLE = 2;
/** The versions this code reads. */
export type ManifestVersion = typeof MANIFEST_VERSION | typeof MANIFEST_VERSION_ITEM_TABLE;
/** The name of a version-2 model's 8-bit item table file, beside backbone.bin. */
export const ITEM_TABLE_FILE = 'item_emb.q8';

/** A version-2 manifest's item table file: core's 8-bit layout, pinned like the frozen weights. */
export interface ItemTableFile {
  readonly file: typeof ITEM_TABLE_FILE;
  readonly scheme: typeof ITEM_TABLE_SCHEME;
  /** itemTableByteLength(numItems + 1, dim): checked by parseManifest. */
  readonly byteLength: number;
  /** Lower-case hex SHA-256 of the file's bytes. */
  readonly sha256: string;
}

interface ManifestCommon {
  readonly format: typeof MANIFEST_FORMAT;
  /** 1: item_emb in backbone.bin; 2: `itemTable` (see the module comment). */
  readonly version: ManifestVersion;
  /** Lower-case slug: letters, digits, single hyphens between them; at most 64 chars. */
  readonly modelId: string;
  readonly numItems: number;
  /** Length of the user embedding z produced by the on-device GRU. */
  readonly userDim: number;
  /** u32 seed of the frozen weights. */
  readonly seed: number;
  /** Quantizable layers, in order; must equal what backbones.ts derives from dims. */
  readonly layers: readonly LayerSpec[];
  /** Lower-case hex SHA-256 of the frozen weights (see hashFrozenWeights), wherever they come from. */
  readonly frozenWeightsHash: string;
  /** Where the frozen weights come from (see the module comment); absent means 'seed'. */
  readonly frozenWeights?: FrozenWeightsOrigin;
  /** Version 2 only, and there required: the 8-bit item table file. */
  readonly itemTable?: ItemTableFile;
}

export type FrozenWeightsOrigin = 'seed' | 'shipped';

export type ModelManifest = ManifestCommon & BackboneConfig;

/** ManifestError and its subclasses. */
type ManifestErrorName = 'ManifestError' | 'FrozenHashMismatchError' | 'FrozenSourceError' | 'ItemTableFileError';
export type ManifestErrorCode = ErrorCodeOf<ManifestErrorName>;

/** A manifest that is malformed or inconsistent; `field` is the path of the first bad field. */
export class ManifestError extends ChordError<ManifestErrorName> {
  override readonly name: ManifestErrorName = 'ManifestError';
  readonly field: string;
  constructor(field: string, message: string, code: ManifestErrorCode = 'MANIFEST_INVALID') {
    super(code, `manifest ${field}: ${message}`);
    this.field = field;
  }
}

/**
 * The frozen weights do not hash to the manifest's frozenWeightsHash: those this code generates
 * from the seed, or those the backbone ships (a damaged download or stored copy).
 */
export class FrozenHashMismatchError extends ManifestError {
  override readonly name = 'FrozenHashMismatchError';
  declare readonly code: ErrorCodeOf<'FrozenHashMismatchError'>;
  readonly expected: string;
  readonly actual: string;
  readonly source: FrozenWeightsOrigin;
  constructor(expected: string, actual: string, source: FrozenWeightsOrigin = 'seed') {
    super(
      'frozenWeightsHash',
      `${source === 'shipped' ? 'shipped' : 'generated'} frozen weights hash to ${actual}, manifest says ${expected}`,
      'FROZEN_HASH_MISMATCH',
    );
    this.expected = expected;
    this.actual = actual;
    this.source = source;
  }
}

/** The manifest's frozenWeights and the backbone tensors disagree on where the weights come from. */
export class FrozenSourceError extends ManifestError {
  override readonly name = 'FrozenSourceError';
  declare readonly code: ErrorCodeOf<'FrozenSourceError'>;
  constructor(message: string) {
    super('frozenWeights', message, 'FROZEN_SOURCE_MISMATCH');
  }
}

/** A version-2 model's item_emb.q8 is not the file its manifest pins (length or SHA-256). */
export class ItemTableFileError extends ManifestError {
  override readonly name = 'ItemTableFileError';
  declare readonly code: ErrorCodeOf<'ItemTableFileError'>;
  constructor(message: string, code: ErrorCodeOf<'ItemTableFileError'>) {
    super('itemTable', message, code);
  }
}

const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

const int = (min: number, max: number) => z.int().check(z.minimum(min), z.maximum(max));
const u32 = int(0, 0xffffffff);
const dim = int(1, MAX_DIM);
const positiveInt = int(1, Number.MAX_SAFE_INTEGER);
const nonNegative = z.number().check(z.minimum(0), z.maximum(Number.MAX_VALUE));
const fanMode = z.enum(['fan_in', 'fan_out']);
const nonlinearity = z.enum(['linear', 'relu', 'leaky_relu']);

const initSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('uniform'), bound: nonNegative }),
  z.strictObject({ kind: z.literal('normal'), std: nonNegative }),
  z.strictObject({ kind: z.literal('xavier_uniform'), gain: nonNegative }),
  z.strictObject({ kind: z.literal('xavier_normal'), gain: nonNegative }),
  z.strictObject({ kind: z.literal('kaiming_uniform'), a: nonNegative, mode: fanMode, nonlinearity }),
  z.strictObject({ kind: z.literal('kaiming_normal'), a: nonNegative, mode: fanMode, nonlinearity }),
]);

const layerSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  shape: z.array(positiveInt).check(z.minLength(1)),
  outChannels: positiveInt,
  rowLength: positiveInt,
  init: initSchema,
});

const itemTableSchema = z.strictObject({
  file: z.literal(ITEM_TABLE_FILE),
  scheme: z.literal(ITEM_TABLE_SCHEME),
  byteLength: positiveInt,
  sha256: z.string().check(z.regex(SHA256_HEX, 'must be 64 lower-case hex digits')),
});

const common = {
  format: z.literal(MANIFEST_FORMAT),
  version: z.union([z.literal(MANIFEST_VERSION), z.literal(MANIFEST_VERSION_ITEM_TABLE)]),
  modelId: z.string().check(z.maxLength(64), z.regex(SLUG, 'must be a lower-case slug like "sasrec-ml100k"')),
  numItems: int(1, 0x7fffffff),
  userDim: dim,
  seed: u32,
  layers: z.array(layerSchema),
  frozenWeightsHash: z.string().check(z.regex(SHA256_HEX, 'must be 64 lower-case hex digits')),
  frozenWeights: z.optional(z.enum(['seed', 'shipped'])),
  itemTable: z.optional(itemTableSchema),
};

const manifestSchema = z.discriminatedUnion('backbone', [
  z.strictObject({
    ...common,
    backbone: z.literal('sasrec'),
    dims: z.strictObject({ hidden: dim, heads: dim, blocks: dim, ffn: dim, maxLen: dim }),
  }),
  z.strictObject({
    ...common,
    backbone: z.literal('caser'),
    dims: z.strictObject({ d: dim, L: dim, nv: dim, nh: dim, maxLen: dim }),
  }),
]);

/**
 * English messages for the issues these schemas raise. zod/mini ships no locale (zod's `en`
 * would be a global setting, shared with an app's own zod), so parseManifest passes this one.
 */
function issueMessage(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}, got ${issue.input === null ? 'null' : Array.isArray(issue.input) ? 'array' : typeof issue.input}`;
    case 'too_small':
      return issue.origin === 'array' || issue.origin === 'string' ? `must have at least ${String(issue.minimum)} element(s)` : `must be >= ${String(issue.minimum)}`;
    case 'too_big':
      return issue.origin === 'array' || issue.origin === 'string' ? `must have at most ${String(issue.maximum)} element(s)` : `must be <= ${String(issue.maximum)}`;
    case 'invalid_value':
      return `must be ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
    case 'unrecognized_keys':
      return 'is not a manifest field';
    case 'invalid_union':
      return issue.errors.length === 0 ? 'is not one of the allowed values' : 'does not match any allowed shape';
    default:
      return 'is invalid';
  }
}

function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

function firstIssue(error: z.core.$ZodError): ManifestError {
  const issue = error.issues[0];
  if (!issue) return new ManifestError('(root)', 'invalid');
  // An unknown key is reported on its parent object; name the key itself.
  const path =
    issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined
      ? [...issue.path, issue.keys[0]]
      : issue.path;
  return new ManifestError(fieldPath(path), issue.message);
}

/** backboneLayers, with invalid dims reported as a ManifestError on the dims field. */
function deriveLayers(config: BackboneConfig): LayerSpec[] {
  try {
    return backboneLayers(config);
  } catch (error) {
    if (error instanceof BackboneDimsError) {
      throw new ManifestError(error.field === undefined ? 'dims' : `dims.${error.field}`, error.message);
    }
    throw error;
  }
}

/** Throws ManifestError at the first field where `actual` differs from the derived layers. */
function checkLayers(actual: readonly LayerSpec[], expected: readonly LayerSpec[]): void {
  if (actual.length !== expected.length) {
    throw new ManifestError('layers', `dims derive ${expected.length} layers, manifest lists ${actual.length}`);
  }
  expected.forEach((want, i) => {
    const got = actual[i]!;
    const at = `layers[${i}]`;
    if (got.name !== want.name) {
      throw new ManifestError(`${at}.name`, `expected "${want.name}", got "${got.name}"`);
    }
    if (got.shape.length !== want.shape.length || got.shape.some((v, d) => v !== want.shape[d])) {
      throw new ManifestError(`${at}.shape`, `expected [${want.shape.join(', ')}], got [${got.shape.join(', ')}]`);
    }
    if (got.outChannels !== want.outChannels) {
      throw new ManifestError(`${at}.outChannels`, `expected ${want.outChannels}, got ${got.outChannels}`);
    }
    if (got.rowLength !== want.rowLength) {
      throw new ManifestError(`${at}.rowLength`, `expected ${want.rowLength}, got ${got.rowLength}`);
    }
    if (got.init.kind !== want.init.kind) {
      throw new ManifestError(`${at}.init.kind`, `expected "${want.init.kind}", got "${got.init.kind}"`);
    }
    const gotInit = got.init as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(want.init)) {
      if (gotInit[key] !== value) {
        throw new ManifestError(`${at}.init.${key}`, `expected ${String(value)}, got ${String(gotInit[key])}`);
      }
    }
  });
}

/**
 * Validates untrusted JSON as a ModelManifest. Checks structure, ranges, dims consistency and
 * that `layers` equals the layers derived from backbone + dims. Does not check
 * frozenWeightsHash against the weights (that needs generating them; see loadFrozenWeights).
 */
export function parseManifest(json: unknown): ModelManifest {
  checkVersionKnown(json);
  const parsed = manifestSchema.safeParse(json, { error: issueMessage });
  if (!parsed.success) throw firstIssue(parsed.error);
  const manifest: ModelManifest = parsed.data;
  checkLayers(manifest.layers, deriveLayers(manifest));
  checkItemTable(manifest);
  return manifest;
}

/**
 * A later version is refused before its fields are read, with a code of its own: its other fields
 * may mean something this code does not know (as version 2's did for version 1's readers).
 */
function checkVersionKnown(json: unknown): void {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return;
  const version = (json as Record<string, unknown>).version;
  if (typeof version === 'number' && Number.isInteger(version) && version > MANIFEST_VERSION_ITEM_TABLE) {
    throw new ManifestError(
      'version',
      `${version} is newer than this chord-rerank reads (${MANIFEST_VERSION}, ${MANIFEST_VERSION_ITEM_TABLE}): update the package`,
      'MANIFEST_VERSION_UNSUPPORTED',
    );
  }
}

/** Width of a manifest's item table: the backbone's embedding width. */
export function manifestItemDim(manifest: BackboneConfig): number {
  return manifest.backbone === 'sasrec' ? manifest.dims.hidden : manifest.dims.d;
}

/** Version 2 has an itemTable of the size its shape needs, version 1 none. */
function checkItemTable(manifest: ModelManifest): void {
  if (manifest.version === MANIFEST_VERSION) {
    if (manifest.itemTable !== undefined) {
      throw new ManifestError('itemTable', `is a version-${MANIFEST_VERSION_ITEM_TABLE} field; a version-${MANIFEST_VERSION} model ships item_emb in backbone.bin`);
    }
    return;
  }
  if (manifest.itemTable === undefined) {
    throw new ManifestError('itemTable', `version ${MANIFEST_VERSION_ITEM_TABLE} needs it: the item table is not in backbone.bin`);
  }
  const expected = itemTableByteLength(manifest.numItems + 1, manifestItemDim(manifest));
  if (manifest.itemTable.byteLength !== expected) {
    throw new ManifestError(
      'itemTable.byteLength',
      `expected ${expected} (${manifest.numItems} items + padding, width ${manifestItemDim(manifest)}), got ${manifest.itemTable.byteLength}`,
    );
  }
}

/**
 * The same model with its item table shipped as an 8-bit file of `sha256` (version 2), or, with
 * `undefined`, shipped as float32 item_emb in backbone.bin (version 1, the fields as before).
 */
export function withItemTableFile(manifest: ModelManifest, sha256: string | undefined): ModelManifest {
  const itemTable: ItemTableFile | undefined =
    sha256 === undefined
      ? undefined
      : { file: ITEM_TABLE_FILE, scheme: ITEM_TABLE_SCHEME, byteLength: itemTableByteLength(manifest.numItems + 1, manifestItemDim(manifest)), sha256 };
  const out: Record<string, unknown> = {};
  // Field by field, so a version-1 manifest comes back in its own key order (same bytes, same store version).
  for (const [key, value] of Object.entries(manifest)) {
    if (key === 'itemTable') continue;
    out[key] = key === 'version' ? (itemTable ? MANIFEST_VERSION_ITEM_TABLE : MANIFEST_VERSION) : value;
  }
  if (itemTable) out.itemTable = itemTable;
  return parseManifest(out);
}

/**
 * A version-2 model's item table from the bytes of its item_emb.q8, checked as every reader checks
 * it (the page, the strategy server, export): the length (ItemTableFileError
 * ITEM_TABLE_LENGTH_MISMATCH), then the SHA-256 against the manifest (ITEM_TABLE_HASH_MISMATCH),
 * then core's layout (itemTableFromBytes' QuantizeError). `sha256` is the caller's lower-case hex
 * hash of `bytes`, so a synchronous and an asynchronous reader share the check. A version-1
 * manifest is a ManifestError: it pins no file.
 */
export function itemTableFromFile(manifest: ModelManifest, bytes: Uint8Array<ArrayBuffer>, sha256: string): ItemTableQ8 {
  const pinned = manifest.itemTable;
  if (!pinned) throw new ManifestError('itemTable', `a version-${MANIFEST_VERSION} model ships no item table file`);
  if (bytes.byteLength !== pinned.byteLength) {
    throw new ItemTableFileError(
      `${pinned.file} has ${bytes.byteLength} bytes, the manifest says ${pinned.byteLength} (truncated or another model's table)`,
      'ITEM_TABLE_LENGTH_MISMATCH',
    );
  }
  if (sha256 !== pinned.sha256) throw new ItemTableFileError(`${pinned.file} hashes to ${sha256}, the manifest says ${pinned.sha256}`, 'ITEM_TABLE_HASH_MISMATCH');
  return itemTableFromBytes(bytes, manifest.numItems + 1, manifestItemDim(manifest));
}

export type ManifestInput = BackboneConfig & {
  readonly modelId: string;
  readonly numItems: number;
  readonly userDim: number;
  readonly seed: number;
  /**
   * The artifact's backbone tensors. When they ship the layer weights (frozen-pretrained, Base),
   * the manifest pins those (`frozenWeights: 'shipped'`); otherwise the seed's.
   */
  readonly backboneTensors?: LayerTensors;
};

/** Where a parsed manifest's frozen weights come from. */
export function frozenWeightsOrigin(manifest: Pick<ModelManifest, 'frozenWeights'>): FrozenWeightsOrigin {
  return manifest.frozenWeights ?? 'seed';
}

/**
 * Builds a manifest: derives the layers from dims and hashes the frozen weights (the shipped
 * ones when `backboneTensors` carries them, else the seed's).
 */
export async function buildManifest(input: ManifestInput): Promise<ModelManifest> {
  const layers = deriveLayers(input);
  const shipped = input.backboneTensors ? shippedFrozenWeights(layers, input.backboneTensors) : undefined;
  const frozenWeightsHash = await hashFrozenWeights(shipped ?? generateFrozenWeights({ seed: input.seed, layers }));
  const common = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    modelId: input.modelId,
    numItems: input.numItems,
    userDim: input.userDim,
    seed: input.seed,
    layers,
    frozenWeightsHash,
    // Seed manifests stay as they were before the field existed (same bytes, same store version).
    ...(shipped ? { frozenWeights: 'shipped' as const } : {}),
  } as const;
  const manifest: ModelManifest =
    input.backbone === 'sasrec'
      ? { ...common, backbone: 'sasrec', dims: input.dims }
      : { ...common, backbone: 'caser', dims: input.dims };
  // Same checks as for a received manifest (e.g. the modelId slug), so every built one parses.
  return parseManifest(manifest);
}

/**
 * Generates the frozen weights of a parsed seed manifest and checks them against its hash; throws
 * FrozenHashMismatchError when this code's weights differ from the ones the manifest pinned, and
 * FrozenSourceError for a manifest whose weights are shipped (see resolveFrozenWeights).
 */
export async function loadFrozenWeights(manifest: ModelManifest): Promise<FrozenLayer[]> {
  if (frozenWeightsOrigin(manifest) === 'shipped') {
    throw new FrozenSourceError("the frozen weights are shipped in the backbone tensors, not regenerated from the seed (resolveFrozenWeights reads them)");
  }
  const layers = generateFrozenWeights(manifest);
  const actual = await hashFrozenWeights(layers);
  if (actual !== manifest.frozenWeightsHash) {
    throw new FrozenHashMismatchError(manifest.frozenWeightsHash, actual);
  }
  return layers;
}

/**
 * The part of the frozen-weights check that needs the backbone tensors. A 'shipped' manifest:
 * the shipped layer weights, all present with the layers' shapes (else ShippedWeightsError) and
 * hashing to frozenWeightsHash (else FrozenHashMismatchError). A 'seed' manifest: undefined, after
 * checking the backbone carries no layer weights (FrozenSourceError), since the device would
 * otherwise run the seed's weights while the artifact meant others.
 */
export async function verifyShippedWeights(
  manifest: Pick<ModelManifest, 'layers' | 'frozenWeights' | 'frozenWeightsHash'>,
  backbone: LayerTensors,
): Promise<FrozenLayer[] | undefined> {
  const shipped = shippedFrozenWeights(manifest.layers, backbone);
  if (frozenWeightsOrigin(manifest) === 'seed') {
    if (shipped) {
      throw new FrozenSourceError(
        "the backbone ships layer weights but the manifest pins the seed's (frozenWeights 'seed'); " +
          "an artifact written before frozenWeights existed: read and write it again (src/model/export.ts) so the manifest pins the shipped weights",
      );
    }
    return undefined;
  }
  if (!shipped) throw new FrozenSourceError("the manifest pins shipped weights (frozenWeights 'shipped') but the backbone ships none");
  const actual = await hashFrozenWeights(shipped);
  if (actual !== manifest.frozenWeightsHash) throw new FrozenHashMismatchError(manifest.frozenWeightsHash, actual, 'shipped');
  return shipped;
}

/** The frozen weights a parsed manifest pins, from the seed or from `backbone`, checked against its hash. */
export async function resolveFrozenWeights(manifest: ModelManifest, backbone: LayerTensors): Promise<FrozenLayer[]> {
  return (await verifyShippedWeights(manifest, backbone)) ?? loadFrozenWeights(manifest);
}
