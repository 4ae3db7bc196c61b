/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) from the schemas the
 * server was built with: scripts/gen-proto.mjs serializes every served .proto and
 * its imports into one FileDescriptorSet at build time, and @bufbuild/protobuf
 * (already the runtime of our generated code) indexes it, so tools like grpcurl
 * can list the services and describe any method or message without the .proto
 * files. @grpc/reflection was not used: it needs @grpc/proto-loader package
 * definitions (and protobufjs), while our services are ts-proto definitions.
 */
import { createFileRegistry, type DescFile, type FileRegistry, fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { DESCRIPTOR_SET_BASE64 } from '../gen/descriptorSet.js';
import type { ServerReflectionRequest, ServerReflectionResponse } from '../gen/grpc/reflection/v1/reflection.js';
import { Code } from '../util/status.js';

/** Answers reflection requests over the schemas of the served services. */
export class ReflectionIndex {
  private readonly registry: FileRegistry;

  /** `services`: the fully qualified names the server serves, read at each list_services. */
  constructor(private readonly services: () => readonly string[]) {
    const set = fromBinary(FileDescriptorSetSchema, Buffer.from(DESCRIPTOR_SET_BASE64, 'base64'));
    this.registry = createFileRegistry(set);
  }

  /**
   * One response per request. `sent` holds the files already sent on this stream:
   * a file comes with the files it imports, each file once per stream, as clients
   * resolve imports from what they received.
   */
  answer(request: ServerReflectionRequest, sent: Set<string>): ServerReflectionResponse {
    const base = { validHost: request.host, originalRequest: request };
    try {
      if (request.listServices !== undefined) {
        const names = [...this.services()].sort();
        return { ...base, listServicesResponse: { service: names.map((name) => ({ name })) } };
      }
      if (request.fileByFilename !== undefined) {
        return { ...base, fileDescriptorResponse: this.files(this.fileNamed(request.fileByFilename), sent) };
      }
      if (request.fileContainingSymbol !== undefined) {
        return { ...base, fileDescriptorResponse: this.files(this.fileOf(request.fileContainingSymbol), sent) };
      }
      if (request.fileContainingExtension !== undefined) {
        const { containingType, extensionNumber } = request.fileContainingExtension;
        throw new ReflectionError(Code.NOT_FOUND, `no extension ${extensionNumber} of ${containingType}`);
      }
      if (request.allExtensionNumbersOfType !== undefined) {
        const type = this.registry.getMessage(request.allExtensionNumbersOfType);
        if (!type) throw new ReflectionError(Code.NOT_FOUND, `unknown type ${request.allExtensionNumbersOfType}`);
        return { ...base, allExtensionNumbersResponse: { baseTypeName: type.typeName, extensionNumber: [] } };
      }
      throw new ReflectionError(Code.INVALID_ARGUMENT, 'the request asks for nothing');
    } catch (error) {
      if (!(error instanceof ReflectionError)) throw error;
      return { ...base, errorResponse: { errorCode: error.code, errorMessage: error.message } };
    }
  }

  private fileNamed(name: string): DescFile {
    const file = this.registry.getFile(name);
    if (!file) throw new ReflectionError(Code.NOT_FOUND, `unknown file ${name}`);
    return file;
  }

  /** The file declaring a service, method, message, enum, enum value or field by its full name. */
  private fileOf(symbol: string): DescFile {
    const found = this.registry.get(symbol);
    if (found) return found.file;
    // A method (`pkg.Service.Method`), a field or an enum value: its parent is a named type.
    const parent = this.registry.get(symbol.slice(0, Math.max(0, symbol.lastIndexOf('.'))));
    if (parent && parent.kind === 'service' && parent.methods.some((m) => `${parent.typeName}.${m.name}` === symbol)) {
      return parent.file;
    }
    if (parent && parent.kind === 'message' && parent.fields.some((f) => `${parent.typeName}.${f.name}` === symbol)) {
      return parent.file;
    }
    for (const file of this.registry.files) {
      for (const candidate of file.enums) {
        if (candidate.values.some((value) => `${file.proto.package}.${value.name}` === symbol)) return file;
      }
    }
    throw new ReflectionError(Code.NOT_FOUND, `unknown symbol ${symbol}`);
  }

  private files(file: DescFile, sent: Set<string>): { fileDescriptorProto: Buffer[] } {
    const out: Buffer[] = [];
    const visit = (next: DescFile) => {
      if (sent.has(next.proto.name)) return;
      sent.add(next.proto.name);
      out.push(Buffer.from(toBinary(FileDescriptorProtoSchema, next.proto)));
      for (const dependency of next.dependencies) visit(dependency);
    };
    // The file asked for always comes first, even when it was sent before on this stream.
    sent.delete(file.proto.name);
    visit(file);
    return { fileDescriptorProto: out };
  }
}

class ReflectionError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}
