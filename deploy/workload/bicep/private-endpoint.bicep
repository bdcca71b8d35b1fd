// Private Endpoint to the corporate egressd Private Link Service, in the
// consumer's VNet, with a static IP so HTTP(S)_PROXY, NO_PROXY and the
// force-proxy-egress NetworkPolicy can name it.
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

@description('Static private IP of the endpoint inside that subnet; the proxy address workloads use.')
param privateIpAddress string

@description('Shown to the corporate team when they approve the connection: say who you are and which cluster this is.')
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
    // A Private Link Service (not a PaaS resource) has no group IDs and needs
    // no memberName: the one ipConfiguration pins the NIC's address.
    ipConfigurations: [
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
output proxyUrl string = 'http://${privateIpAddress}:3128'
