# Turn a SharpLens LM checkpoint (TransformerLens names) into the Hugging Face Llama folder layout, for lm-eval.
# Usage: python3 checkpoint_to_hf.py OUT.checkpoints/step-NNNNNN OUT /tmp/ckNNNNNN [check]
# (OUT: the folder `sharplens train` saved; it supplies config.json and the tokenizer files; "check" compares the
# converted weights with OUT/model.safetensors, which is exact for the last step). Then: sharplens lm-eval --model /tmp/ckNNNNNN
# The README's checkpoint table of brown-lm came from this. Llama checkpoints only (no GQA).
import json,struct,numpy as np,sys,os,shutil
def read(p):
    data=open(p,'rb').read();n=struct.unpack('<Q',data[:8])[0];h=json.loads(data[8:8+n]);base=8+n
    return {k:np.frombuffer(data[base+v['data_offsets'][0]:base+v['data_offsets'][1]],dtype=np.float32).reshape(v['shape']) for k,v in h.items() if k!='__metadata__'}
def write(p,t):
    h={};off=0;blobs=[]
    for k in sorted(t):
        b=np.ascontiguousarray(t[k],dtype=np.float32).tobytes();h[k]={'dtype':'F32','shape':list(t[k].shape),'data_offsets':[off,off+len(b)]};off+=len(b);blobs.append(b)
    hj=json.dumps(h).encode();hj+=b' '*((8-len(hj)%8)%8)
    with open(p,'wb') as f: f.write(struct.pack('<Q',len(hj)));f.write(hj);[f.write(b) for b in blobs]
def convert(a,L):
    o={'model.embed_tokens.weight':a['embed.W_E'],'lm_head.weight':a['unembed.W_U'].T,'model.norm.weight':a['ln_final.w']}
    for i in range(L):
        p=f'blocks.{i}.';q=f'model.layers.{i}.'
        for n,hf in (('W_Q','q_proj'),('W_K','k_proj'),('W_V','v_proj')):
            W=a[p+'attn.'+n];o[q+f'self_attn.{hf}.weight']=W.transpose(0,2,1).reshape(-1,W.shape[1])
        W=a[p+'attn.W_O'];o[q+'self_attn.o_proj.weight']=W.reshape(-1,W.shape[2]).T
        o[q+'mlp.gate_proj.weight']=a[p+'mlp.W_gate'].T;o[q+'mlp.up_proj.weight']=a[p+'mlp.W_in'].T;o[q+'mlp.down_proj.weight']=a[p+'mlp.W_out'].T
        o[q+'input_layernorm.weight']=a[p+'ln1.w'];o[q+'post_attention_layernorm.weight']=a[p+'ln2.w']
    return o
if __name__=='__main__':
    src,hfref,dst=sys.argv[1:4]
    a=read(os.path.join(src,'model.safetensors'));o=convert(a,json.load(open(os.path.join(src,'config.json')))['n_layers'])
    if len(sys.argv)>4:
        b=read(os.path.join(hfref,'model.safetensors'))
        print('keys equal',sorted(o)==sorted(b),'max diff',max(float(np.abs(o[k]-b[k]).max()) for k in b))
    os.makedirs(dst,exist_ok=True)
    for f in ('config.json','generation_config.json','special_tokens_map.json','tokenizer.json','tokenizer_config.json'): shutil.copy(os.path.join(hfref,f),dst)
    write(os.path.join(dst,'model.safetensors'),o)
