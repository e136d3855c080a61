/**
 * Browser-safe entry point of the dataset layer: parsers, filtering, splitting and the synthetic
 * shop. The file-system loader lives in ./load.ts (Node only) and is deliberately not re-exported.
 */
export { DatasetError, type DatasetErrorCode, type SourceLocation } from './errors.ts';
export { PAD_TOKEN, type Interaction, type SequenceData, type SplitDataset } from './types.ts';
export { parseAtomicInter, formatAtomicInter, RECBOLE_COLUMNS, type AtomicColumns } from './recbole.ts';
export { parseMovieLensUData } from './movielens.ts';
export { parseSequenceFile } from './sequence-file.ts';
export { kcore, kcoreWithPasses, type CoreThreshold, type KCoreResult } from './kcore.ts';
export { groupChronologically, buildSequences, idMaps } from './sequences.ts';
export {
  splitLeaveLastOut,
  prepareDataset,
  validationInput,
  testInput,
  MIN_SPLIT_LENGTH,
  type PrepareOptions,
  type PreparedDataset,
} from './split.ts';
export { datasetStats, lengthSummary, type DatasetStats } from './stats.ts';
export {
  generateCatalogue,
  generateShop,
  generateDriftStream,
  SHOP_DEFAULTS,
  DRIFT_DEFAULTS,
  type Catalogue,
  type CatalogueItem,
  type CatalogueOptions,
  type Category,
  type DriftStream,
  type DriftStreamOptions,
  type Shop,
  type ShopOptions,
  type ShopperTruth,
} from './synthetic.ts';
