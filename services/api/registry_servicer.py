"""gRPC servicer of RegistryService: requests into RegistryService calls, views into messages.

A Registry message never carries the password out: `has_password` says whether one is stored.
"""

from __future__ import annotations

from serversinc.v1 import registry_service_pb2 as pb
from serversinc.v1 import registry_service_pb2_grpc as pb_grpc

from services.api.converters import ts
from services.api.errors import translate_errors
from services.core.errors import InvalidArgument
from services.registries.service import RegistryService, RegistryView

PREFIX = "registries/"


def registry_to_pb(view: RegistryView) -> pb.Registry:
    return pb.Registry(name=PREFIX + view.address, address=view.address, username=view.username,
                       has_password=view.has_password, create_time=ts(view.created),
                       update_time=ts(view.updated))


def parse_name(name: str, field: str = "name") -> str:
    if not name.startswith(PREFIX) or not name[len(PREFIX):]:
        raise InvalidArgument(f"{field}: {name!r} is not registries/{{address}}, e.g. "
                              "registries/registry.example.com:5000", field=field)
    return name[len(PREFIX):]


class RegistryServicer(pb_grpc.RegistryServiceServicer):
    def __init__(self, registries: RegistryService):
        self.registries = registries

    @translate_errors
    def SetRegistry(self, request, context):
        r = request.registry
        address = r.address or (parse_name(r.name, "registry.name") if r.name else "")
        return registry_to_pb(self.registries.set(address, username=r.username, password=r.password))

    @translate_errors
    def GetRegistry(self, request, context):
        return registry_to_pb(self.registries.get(parse_name(request.name)))

    @translate_errors
    def ListRegistries(self, request, context):
        views, token = self.registries.list(page_size=request.page_size, page_token=request.page_token)
        return pb.ListRegistriesResponse(registries=[registry_to_pb(v) for v in views], next_page_token=token)

    @translate_errors
    def DeleteRegistry(self, request, context):
        self.registries.delete(parse_name(request.name))
        return pb.DeleteRegistryResponse()
