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
            found = self._pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            found = self._file_of_method(fully_qualified_name)
        if found is None:
            return super()._file_containing_symbol(request, fully_qualified_name)
        return self._response(found, request)

    def _file_of_method(self, fully_qualified_name: str):
        """The file of `package.Service.Method`. The upb pool finds services, messages and fields by
        name but not methods, so `grpcurl describe quantmesh.order.v1.Order.Submit` answered
        "Symbol not found" although the contract documents the method."""
        service, _, method = fully_qualified_name.rpartition(".")
        try:
            descriptor = self._pool.FindServiceByName(service)
        except KeyError:
            return None
        return descriptor.file if method in descriptor.methods_by_name else None
