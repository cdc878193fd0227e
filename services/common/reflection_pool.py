"""Server reflection that serves the contracts with their comments.

The generated `_pb2` modules carry no source info, and grpcio-reflection
re-serializes descriptors from a pool (which drops it too), so plain reflection
would show the contracts without comments. This servicer answers file requests
with the FileDescriptorProtos `buf generate` saw, comments included, so
`grpcurl describe` reads as the API reference.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

from quantmesh.api_descriptors import FILE_DESCRIPTOR_SET


def documented_files() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    return {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(FILE_DESCRIPTOR_SET).file}


class DocumentedReflection(reflection.aio.ReflectionServicer):
    def __init__(self, service_names) -> None:
        super().__init__(service_names, pool=descriptor_pool.Default())
        self._documented = documented_files()

    def _response(self, descriptor, request):
        seen: dict[str, object] = {}
        pending = [descriptor]
        while pending:
            item = pending.pop()
            if item.name in seen:
                continue
            seen[item.name] = item
            pending.extend(item.dependencies)
        serialized = []
        for name, item in seen.items():
            proto = self._documented.get(name)
            if proto is None:
                proto = descriptor_pb2.FileDescriptorProto()
                item.CopyToProto(proto)
            serialized.append(proto.SerializeToString())
        return reflection_pb2.ServerReflectionResponse(
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(file_descriptor_proto=serialized),
            original_request=request,
        )

    def _file_by_filename(self, request, filename):
        try:
            return self._response(self._pool.FindFileByName(filename), request)
        except KeyError:
            return super()._file_by_filename(request, filename)

    def _file_containing_symbol(self, request, fully_qualified_name):
        try:
            return self._response(self._pool.FindFileContainingSymbol(fully_qualified_name), request)
        except KeyError:
            return super()._file_containing_symbol(request, fully_qualified_name)
