"""An independent gRPC client (Python grpcio, Debian's python3-grpcio) for the
health checking protocol and server reflection, as probes and tools such as
grpc_health_probe and grpcurl use them. Messages are encoded by hand (they are
tiny) and FileDescriptorProtos are read with python3-protobuf.

usage: grpc_probe.py HOST:PORT check SERVICE | watch SERVICE | list | describe SYMBOL [v1|v1alpha]
Prints one JSON object.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pb2


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(number, data):
    return varint((number << 3) | 2) + varint(len(data)) + data


def fields(data):
    """Yields (field number, value) of a message; values are ints or bytes."""
    position = 0
    while position < len(data):
        key, position = read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = read_varint(data, position)
        elif wire_type == 2:
            length, position = read_varint(data, position)
            value, position = data[position:position + length], position + length
        else:
            raise ValueError("unexpected wire type %d" % wire_type)
        yield number, value


def read_varint(data, position):
    result, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, position


STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
identity = lambda message: message


def health(channel, method, service):
    request = length_delimited(1, service.encode()) if service else b""
    path = "/grpc.health.v1.Health/" + method
    try:
        if method == "Check":
            response = channel.unary_unary(path, request_serializer=identity, response_deserializer=identity)(
                request, timeout=10)
        else:
            stream = channel.unary_stream(path, request_serializer=identity, response_deserializer=identity)(
                request, timeout=10)
            response = next(stream)
            stream.cancel()
    except grpc.RpcError as error:
        return {"code": error.code().name, "details": error.details()}
    status = dict(fields(response)).get(1, 0)
    return {"code": "OK", "status": STATUSES.get(status, str(status))}


def reflect(channel, version, request):
    path = "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version
    call = channel.stream_stream(path, request_serializer=identity, response_deserializer=identity)
    responses = list(call(iter([request]), timeout=10))
    return dict((number, value) for number, value in fields(responses[0]))


def main():
    target, command = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel(target)
    if command in ("check", "watch"):
        result = health(channel, "Check" if command == "check" else "Watch", sys.argv[3])
    elif command == "list":
        version = sys.argv[3] if len(sys.argv) > 3 else "v1"
        response = reflect(channel, version, length_delimited(7, b""))
        services = [dict(fields(entry)).get(1, b"").decode()
                    for number, entry in fields(response[6]) if number == 1]
        result = {"services": services}
    elif command == "describe":
        version = sys.argv[4] if len(sys.argv) > 4 else "v1"
        response = reflect(channel, version, length_delimited(4, sys.argv[3].encode()))
        if 7 in response:
            error = dict(fields(response[7]))
            result = {"error": error.get(1), "message": error.get(2, b"").decode()}
        else:
            files = []
            for number, data in fields(response[4]):
                if number != 1:
                    continue
                proto = descriptor_pb2.FileDescriptorProto.FromString(data)
                files.append({
                    "name": proto.name,
                    "package": proto.package,
                    "services": {s.name: [m.name for m in s.method] for s in proto.service},
                    "messages": [m.name for m in proto.message_type],
                })
            result = {"files": files}
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
