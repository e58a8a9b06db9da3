"""Statement files shaped as each standard documents them (element and field names, order,
signs), small enough to read: the tests and the benchmark build on them."""

CAMT053 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>STMT-20250304-001</MsgId><CreDtTm>2025-03-05T06:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>{stmt_id}</Id>
      <ElctrncSeqNb>64</ElctrncSeqNb>
      <CreDtTm>2025-03-05T06:00:00</CreDtTm>
      <FrToDt><FrDtTm>2025-03-03T00:00:00</FrDtTm><ToDtTm>2025-03-04T23:59:59</ToDtTm></FrToDt>
      <Acct>
        <Id><IBAN>{iban}</IBAN></Id>
        <Ccy>GBP</Ccy>
        <Ownr><Nm>Demo Ltd</Nm></Ownr>
      </Acct>
      <Bal>
        <Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="GBP">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2025-03-03</Dt></Dt>
      </Bal>
      <Bal>
        <Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="GBP">{closing}</Amt><CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2025-03-04</Dt></Dt>
      </Bal>
      <Ntry>
        <NtryRef>1</NtryRef>
        <Amt Ccy="GBP">120.50</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2025-03-03</Dt></BookgDt>
        <ValDt><Dt>2025-03-03</Dt></ValDt>
        <AcctSvcrRef>{prefix}0001</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><AcctSvcrRef>{prefix}0001</AcctSvcrRef><EndToEndId>E2E-ACME-1001</EndToEndId></Refs>
          <Amt Ccy="GBP">120.50</Amt><CdtDbtInd>CRDT</CdtDbtInd>
          <RltdPties>
            <Dbtr>{debtor_open}<Nm>ACME LTD</Nm>{debtor_close}</Dbtr>
            <DbtrAcct><Id><IBAN>GB33BUKB20201555555555</IBAN></Id></DbtrAcct>
          </RltdPties>
          <RmtInf><Ustrd>INV-1001 THANK YOU</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="GBP">900.00</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2025-03-03</Dt></BookgDt>
        <AcctSvcrRef>{prefix}0002</AcctSvcrRef>
        <AddtlNtryInf>RENT MARCH</AddtlNtryInf>
      </Ntry>
      <Ntry>
        <Amt Ccy="GBP">300.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2025-03-04</Dt></BookgDt>
        <AcctSvcrRef>{prefix}0003</AcctSvcrRef>
        <NtryDtls>
          <Btch><NbOfTxs>3</NbOfTxs></Btch>
          <TxDtls>
            <Refs><EndToEndId>E2E-G-1</EndToEndId></Refs>
            <Amt Ccy="GBP">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
            <RltdPties><Dbtr>{debtor_open}<Nm>GLOBEX PLC</Nm>{debtor_close}</Dbtr>
              <DbtrAcct><Id><Othr><Id>40051512345678</Id></Othr></Id></DbtrAcct></RltdPties>
            <RmtInf><Strd><CdtrRefInf><Ref>INV-1002</Ref></CdtrRefInf></Strd></RmtInf>
          </TxDtls>
          <TxDtls>
            <Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
            <Amt Ccy="GBP">150.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
            <RltdPties><Dbtr>{debtor_open}<Nm>INITECH</Nm>{debtor_close}</Dbtr></RltdPties>
            <RmtInf><Ustrd>INV-1003</Ustrd></RmtInf>
          </TxDtls>
          <TxDtls>
            <Amt Ccy="GBP">50.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
            <RltdPties><Dbtr>{debtor_open}<Nm>HOOLI</Nm>{debtor_close}</Dbtr></RltdPties>
            <RmtInf><Ustrd>INV-1004</Ustrd></RmtInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="GBP">75.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>PDNG</Cd></Sts>
        <BookgDt><Dt>2025-03-04</Dt></BookgDt>
        <AddtlNtryInf>NOT BOOKED YET</AddtlNtryInf>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""


def camt053(
    *,
    version: str = "02",
    iban: str = "GB29NWBK60161331926819",
    stmt_id: str = "STMT-2025-03-04",
    closing: str = "520.50",
    prefix: str = "NWB",
) -> bytes:
    # version 08 and later wrap the party in <Pty>
    wrap = version >= "08"
    return CAMT053.format(
        version=version,
        iban=iban,
        stmt_id=stmt_id,
        closing=closing,
        prefix=prefix,
        debtor_open="<Pty>" if wrap else "",
        debtor_close="</Pty>" if wrap else "",
    ).encode()


CAMT054 = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr><MsgId>NTF-1</MsgId><CreDtTm>2025-03-05T10:00:00</CreDtTm></GrpHdr>
    <Ntfctn>
      <Id>NTF-1-1</Id>
      <Acct><Id><IBAN>IE29AIBK93115212345678</IBAN></Id><Ccy>EUR</Ccy></Acct>
      <Ntry>
        <Amt Ccy="EUR">250.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2025-03-05</Dt></BookgDt><AcctSvcrRef>AIB-77</AcctSvcrRef>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>SEPA-E2E-77</EndToEndId></Refs>
          <RltdPties><Dbtr><Pty><Nm>Dublin Widgets DAC</Nm></Pty></Dbtr>
            <DbtrAcct><Id><IBAN>IE64IRCE92050112345678</IBAN></Id></DbtrAcct></RltdPties>
          <RmtInf><Ustrd>INV-2001</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>
"""

# Lloyds Commercial Banking Online MT940: sort code and account number in :25:, narrative in
# :86: lines; NatWest Bankline: the SWIFT envelope around block 4, IBAN in :25:.
MT940_LLOYDS = b""":20:LLOYDS0304
:25:309950 12345678
:28C:00064/001
:60F:C250303GBP1000,00
:61:2503030303C120,50NTRFNONREF//LBG0001
:86:ACME LTD INV-1001
:61:2503030303D900,00NCHQ100234//LBG0002
:86:RENT MARCH
:61:2503040304C300,00NTRFINV-1002//LBG0003
:86:GLOBEX PLC
:62F:C250304GBP520,50
"""

MT940_NATWEST = b"""{1:F01NWBKGB2LAXXX0000000000}{2:O9401200250304NWBKGB2LAXXX00000000002503041200N}{4:
:20:NWB20250304
:25:GB29NWBK60161331926819
:28C:64/1
:60F:C250303GBP1000,00
:61:250303C120,50NTRFNONREF//NWB0001
:86:/ORDP//ACME LTD/REMI/INV-1001/IBAN/GB33BUKB20201555555555
:61:250304D900,00NDDTNONREF//NWB0002
:86:RENT
:62F:C250304GBP220,50
-}"""

BAI2 = b"""01,NWBKGB2L,DEMOLTD,250305,0600,1,80,1,2/
02,DEMOLTD,NWBKGB2L,1,250304,2359,GBP,2/
03,60161331926819,GBP,010,100000,,,015,52050,,/
16,195,12050,Z,BR0001,INV-1001,ACME LTD/
16,495,90000,Z,BR0002,,RENT MARCH/
16,195,30000,Z,BR0003,INV-1002,GLOBEX PLC/
49,284100,5/
98,284100,1,7/
99,284100,1,9/
"""

OFX = b"""OFXHEADER:100
DATA:OFXSGML
VERSION:102
SECURITY:NONE
ENCODING:USASCII
CHARSET:1252
COMPRESSION:NONE
OLDFILEUID:NONE
NEWFILEUID:NONE

<OFX>
<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>
<DTSERVER>20250305120000<LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1>
<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>
<STMTRS><CURDEF>GBP
<BANKACCTFROM><BANKID>601613<ACCTID>31926819<ACCTTYPE>CHECKING</BANKACCTFROM>
<BANKTRANLIST><DTSTART>20250303<DTEND>20250304
<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20250303<TRNAMT>120.50<FITID>202503030001<NAME>ACME LTD<MEMO>INV-1001</STMTTRN>
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20250303<TRNAMT>-900.00<FITID>202503030002<NAME>RENT</STMTTRN>
<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20250304<TRNAMT>300.00<FITID>202503040001<NAME>GLOBEX & SONS<MEMO>INV-1002</STMTTRN>
</BANKTRANLIST>
<LEDGERBAL><BALAMT>520.50<DTASOF>20250304</LEDGERBAL>
</STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>
"""

QIF = b"""!Type:Bank
D03/03/2025
T120.50
PACME LTD
MINV-1001
^
D03/03/2025
T-900.00
PRENT
^
D04/03'25
T1,300.00
PGLOBEX PLC
MINV-1002
N000123
^
"""
