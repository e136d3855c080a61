/**
 * The part of the WebAssembly JS API that wasm-kernels.ts uses. Node has it at runtime, but
 * TypeScript declares it only in the DOM and WebWorker libs, which the server does not load
 * (src/cloud/tsconfig.json), so it is declared here.
 */
declare namespace WebAssembly {
  class Module {
    constructor(bytes: BufferSource);
  }
  class Memory {
    constructor(descriptor: { initial: number });
    readonly buffer: ArrayBuffer;
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  function validate(bytes: BufferSource): boolean;
}

type BufferSource = ArrayBufferView<ArrayBuffer> | ArrayBuffer;
