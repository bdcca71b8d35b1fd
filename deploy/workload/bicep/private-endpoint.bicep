// Private Endpoint to the corporate egressd Private Link Service, in the
// consumer's VNet. Its IP is dynamic by default: Microsoft lists a static
// Private Endpoint IP as unsupported for a customer-owned ("third party")
// Private Link Service, and a dynamic IP stays fixed for the endpoint's
// lifetime. The deployment outputs it (privateIpAddress, proxyUrl); put it
// into ../inject/config.yaml proxy.http_proxy and the ipBlock of
// ../filtered-namespace/force-proxy-egress.yaml (docs/deploy.md, "The endpoint
// IP"). A static IP stays available as an explicit opt-in (privateIpAddress).
//
// The connection is a *manual* request: across Azure AD tenants the PLS
// owner must approve it (az network private-endpoint-connection approve),
// and requestMessage is what they see when deciding. Same-tenant
// subscriptions listed in the PLS's auto-approval are connected at once
// either way.
//
// Deploy (example values in private-endpoint.bicepparam):
//   az deployment group create -g RG --template-file private-endpoint.bicep \
//     --parameters private-endpoint.bicepparam

@description('Alias of the corporate Private Link Service (from the corporate team), e.g. pls-egressd.<guid>.westeurope.azure.privatelinkservice.')
param privateLinkServiceAlias string

@description('Resource ID of the subnet the endpoint lives in (the workload VNet).')
param subnetId string

@description('Opt-in static private IP of the endpoint; empty (the default) lets Azure assign one, which is what Microsoft supports for a customer-owned Private Link Service.')
param privateIpAddress string = ''

@description('Shown to the corporate team when they approve the connection: say who you are and which cluster this is.')
@maxLength(140)
param requestMessage string

@description('Name of the Private Endpoint resource.')
param name string = 'pe-egressd'

param location string = resourceGroup().location

resource endpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: name
  location: location
  properties: {
    subnet: {
      id: subnetId
    }
    customNetworkInterfaceName: '${name}-nic'
    // Only with the static opt-in. A Private Link Service (not a PaaS
    // resource) has no group IDs and needs no memberName: the one
    // ipConfiguration pins the NIC's address.
    ipConfigurations: empty(privateIpAddress) ? [] : [
      {
        name: 'egressd'
        properties: {
          privateIPAddress: privateIpAddress
        }
      }
    ]
    // Manual, because the PLS usually belongs to another tenant: the
    // connection stays Pending until the corporate team approves it.
    manualPrivateLinkServiceConnections: [
      {
        name: '${name}-connection'
        properties: {
          privateLinkServiceId: privateLinkServiceAlias
          requestMessage: requestMessage
        }
      }
    ]
  }
}

output privateEndpointId string = endpoint.id
// The address Azure gave the endpoint's NIC (or the static opt-in).
output privateIpAddress string = reference(endpoint.properties.networkInterfaces[0].id, '2023-11-01').ipConfigurations[0].properties.privateIPAddress
output proxyUrl string = 'http://${reference(endpoint.properties.networkInterfaces[0].id, '2023-11-01').ipConfigurations[0].properties.privateIPAddress}:3128'
